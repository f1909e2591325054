package pip

import (
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/lock"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

func TestTargetFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  lock.Environment
		want Target
	}{
		{lock.Environment{Platform: "linux-64", VirtualPackages: map[string]string{"__glibc": "2.28"},
			Packages: []repodata.Record{{Name: "python", Version: "3.11.7", Build: "hab00c5b_1_cpython"}, {Name: "python_abi", Version: "3.11", Build: "4_cp311"}}},
			Target{Platform: "linux-64", Glibc: "2.28", PythonVersion: "3.11", Implementation: "cp", ABI: "cp311"}},
		{lock.Environment{Platform: "linux-aarch64",
			Packages: []repodata.Record{{Name: "python", Version: "3.13.0", Build: "h_cp313t"}, {Name: "python_abi", Version: "3.13", Build: "5_cp313t"}}},
			Target{Platform: "linux-aarch64", PythonVersion: "3.13", Implementation: "cp", ABI: "cp313t"}},
		{lock.Environment{Platform: "osx-arm64", VirtualPackages: map[string]string{"__osx": "13.0"},
			Packages: []repodata.Record{{Name: "python", Version: "3.9.18", Build: "0_73_pypy"}, {Name: "python_abi", Version: "3.9", Build: "4_pypy39_pp73"}}},
			Target{Platform: "osx-arm64", MacOS: "13.0", PythonVersion: "3.9", Implementation: "pp", ABI: "pypy39_pp73"}},
		{lock.Environment{Platform: "linux-64", Packages: []repodata.Record{{Name: "python", Version: "3.10.2", Build: "0"}}},
			Target{Platform: "linux-64", PythonVersion: "3.10", Implementation: "cp", ABI: "cp310"}},
	} {
		got, err := TargetFor(&tc.env)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.env.Platform, got, err, tc.want)
		}
	}
	if _, err := TargetFor(&lock.Environment{Platform: "linux-64"}); err == nil {
		t.Error("an environment without python gave a target")
	}
}
