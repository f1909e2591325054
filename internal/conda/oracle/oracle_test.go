package oracle

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCompareAndMatches(t *testing.T) {
	o := ForTest(t)
	res, err := o.Compare([][2]string{{"1.0", "1.1"}, {"1.1", "1.0"}, {"1.0", "1.0.0"}, {"1..0", "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Order != -1 || res[1].Order != 1 || res[2].Order != 0 || res[3].Err == "" {
		t.Fatalf("Compare = %+v", res)
	}
	m, err := o.Matches([]MatchRequest{{Spec: ">=1,<2", Version: "1.5"}, {Spec: "1.2.*", Version: "1.3"}, {Spec: "1.2", Version: "1.2"}, {Spec: "1.2", Version: "1.2", Lenient: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !m[0].Match || m[1].Match || m[2].Err == "" || !m[3].Match {
		t.Fatalf("Matches = %+v", m)
	}
}

func TestSimpleSolve(t *testing.T) {
	o := ForTest(t)
	repo := func(subdir string, pkgs map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"info": map[string]string{"subdir": subdir}, "packages": pkgs})
		return b
	}
	linux := repo("linux-64", map[string]any{
		"a-1.0-0.tar.bz2": map[string]any{"name": "a", "version": "1.0", "build": "0", "build_number": 0, "depends": []string{"b >=2"}, "subdir": "linux-64"},
		"a-2.0-0.tar.bz2": map[string]any{"name": "a", "version": "2.0", "build": "0", "build_number": 0, "depends": []string{"b <2"}, "subdir": "linux-64"},
		"b-1.0-0.tar.bz2": map[string]any{"name": "b", "version": "1.0", "build": "0", "build_number": 0, "depends": []string{}, "subdir": "linux-64"},
		"b-2.0-0.tar.bz2": map[string]any{"name": "b", "version": "2.0", "build": "0", "build_number": 0, "depends": []string{}, "subdir": "linux-64"},
	})
	noarch := repo("noarch", map[string]any{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ch/linux-64/repodata.json", func(w http.ResponseWriter, _ *http.Request) { w.Write(linux) })
	mux.HandleFunc("/ch/noarch/repodata.json", func(w http.ResponseWriter, _ *http.Request) { w.Write(noarch) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	recs, err := o.SimpleSolve(context.Background(), []string{"a", "b >=2"}, []string{srv.URL + "/ch"}, []string{"linux-64", "noarch"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[r.Name] = r.Version
	}
	if got["a"] != "1.0" || got["b"] != "2.0" || len(got) != 2 {
		t.Fatalf("solution %+v", recs)
	}
	_, err = o.SimpleSolve(context.Background(), []string{"a >=2", "b >=2"}, []string{srv.URL + "/ch"}, []string{"linux-64", "noarch"})
	var se *SolveError
	if !errors.As(err, &se) {
		t.Fatalf("want a SolveError, got %v", err)
	}
	t.Logf("unsat: %s", se.Message)
}
