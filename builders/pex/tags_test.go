package pex

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/builders"
	"github.com/sparkenv/sparkenv/builders/pex/pextest"
)

func TestWheelPythons(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"a-1.0-py3-none-any.whl":                                       "[]",
		"a-1.0-py2.py3-none-any.whl":                                   "[]",
		"a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl":                  "[3.11]",
		"a-1.0-cp310-cp310-manylinux1_x86_64.manylinux2014_x86_64.whl": "[3.10]",
		"a-1.0-cp38-abi3-manylinux_2_17_x86_64.whl":                    "[]",
		"a-1.0-cp310.cp311-none-any.whl":                               "[3.10 3.11]",
		"a-1.0-pp39-pypy39_pp73-manylinux_2_17_x86_64.whl":             "[]",
	} {
		got, err := WheelPythons(name)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("WheelPythons(%s) = %v, %v; want %s", name, got, err, want)
		}
	}
	if _, err := WheelPythons("not-a-wheel.zip"); err == nil {
		t.Error("bad file name accepted")
	}
}

func TestConstraintFromWheelTags(t *testing.T) {
	t.Parallel()
	native := func(name, tag string) pextest.Spec {
		return pextest.Spec{Name: name, Version: "1.0", Tag: tag, Files: map[string]string{name + "/__init__.py": ""}}
	}
	build := func(cfg *Config, specs ...pextest.Spec) (*builders.Result, string, error) {
		ws := pextest.Wheels(t, t.TempDir(), specs...)
		var log bytes.Buffer
		cfg.Environment = "environment.etl"
		req := &builders.Request{Address: "target.pex.job", Name: "job", Config: cfg,
			Inputs: []builders.Input{pextest.EnvInput(t, "etl", ws)}, OutDir: t.TempDir(), TempDir: t.TempDir(),
			Log: &log, PackageCacheDir: t.TempDir()}
		res, err := New().Build(context.Background(), req)
		return res, log.String(), err
	}
	pure := pextest.Pair()[0]
	res, _, err := build(&Config{}, pure, native("n1", "cp311-cp311-manylinux_2_17_x86_64"))
	if err != nil || res.Metadata["interpreter_constraints"] != "==3.11.*" {
		t.Errorf("derived constraint: %v, %v", res, err)
	}
	_, log, err := build(&Config{PythonVersion: ">=3.10,<3.13"}, native("n1", "cp311-cp311-manylinux_2_17_x86_64"))
	if err != nil || !strings.Contains(log, "WARNING: python_version >=3.10,<3.13 allows Python 3.10, 3.12, which the wheels n1-1.0-cp311-cp311-manylinux_2_17_x86_64.whl do not support") {
		t.Errorf("no warning: %v\n%s", err, log)
	}
	_, _, err = build(&Config{}, native("n1", "cp311-cp311-manylinux_2_17_x86_64"), native("n2", "cp310-cp310-manylinux_2_17_x86_64"))
	if err == nil || !strings.Contains(err.Error(), "share no CPython version") {
		t.Errorf("disjoint wheels: %v", err)
	}
}
