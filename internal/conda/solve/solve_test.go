package solve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/matchspec"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

// pkg builds a record: "name version build_number", then dependencies.
func pkg(name, ver string, bn int64, deps ...string) repodata.Record {
	return repodata.Record{Name: name, Version: ver, Build: "0", BuildNumber: bn, Depends: deps, Subdir: "linux-64",
		FileName: name + "-" + ver + ".tar.bz2"}
}

func specs(t *testing.T, ss ...string) []matchspec.MatchSpec {
	t.Helper()
	out := make([]matchspec.MatchSpec, len(ss))
	for i, s := range ss {
		out[i] = matchspec.MustParse(s)
	}
	return out
}

func solved(t *testing.T, r Request) map[string]string {
	t.Helper()
	sol, err := Solve(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, rec := range sol.Records {
		if _, dup := got[rec.Name]; dup {
			t.Fatalf("%s chosen twice", rec.Name)
		}
		got[rec.Name] = rec.Version
	}
	return got
}

func one(recs ...repodata.Record) []ChannelRecords {
	return []ChannelRecords{{Name: "main", Records: recs}}
}

func TestPreferencesAndBacktracking(t *testing.T) {
	t.Parallel()
	ch := one(
		pkg("a", "1.0", 0, "b >=2"), pkg("a", "2.0", 0, "b <2"),
		pkg("b", "1.0", 0), pkg("b", "2.0", 0), pkg("b", "2.0", 3), pkg("b", "2.0", 1),
	)
	got := solved(t, Request{Channels: ch, Specs: specs(t, "a")})
	if got["a"] != "2.0" || got["b"] != "1.0" {
		t.Errorf("a alone: %v (want a 2.0 first, then what it needs)", got)
	}
	got = solved(t, Request{Channels: ch, Specs: specs(t, "b >=2", "a")})
	if got["a"] != "1.0" || got["b"] != "2.0" {
		t.Errorf("b>=2 then a: %v", got)
	}
	sol, _ := Solve(context.Background(), Request{Channels: ch, Specs: specs(t, "b")})
	if sol.Records[0].BuildNumber != 3 {
		t.Errorf("want the highest build number, got %+v", sol.Records[0])
	}
}

func TestInstallOrder(t *testing.T) {
	t.Parallel()
	ch := one(pkg("app", "1", 0, "lib", "zlib"), pkg("lib", "1", 0, "zlib"), pkg("zlib", "1", 0), pkg("aaa", "1", 0),
		pkg("cyc1", "1", 0, "cyc2"), pkg("cyc2", "1", 0, "cyc1"))
	sol, err := Solve(context.Background(), Request{Channels: ch, Specs: specs(t, "app", "aaa", "cyc2")})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range sol.Records {
		order = append(order, r.Name)
	}
	if got := strings.Join(order, " "); got != "aaa zlib lib app cyc1 cyc2" {
		t.Errorf("install order %q", got)
	}
}

func TestConstrains(t *testing.T) {
	t.Parallel()
	a := pkg("a", "1", 0)
	a.Constrains = []string{"b <2"}
	ch := one(a, pkg("b", "1", 0), pkg("b", "2", 0), pkg("c", "1", 0, "a"))
	if got := solved(t, Request{Channels: ch, Specs: specs(t, "a", "b")}); got["b"] != "1" {
		t.Errorf("constrained b: %v", got)
	}
	if got := solved(t, Request{Channels: ch, Specs: specs(t, "b")}); got["b"] != "2" || got["a"] != "" {
		t.Errorf("a not installed, so its constraint does not apply: %v", got)
	}
	_, err := Solve(context.Background(), Request{Channels: ch, Specs: specs(t, "c", "b >=2")})
	if !errors.Is(err, ErrUnsatisfiable) {
		t.Errorf("c pulls a which constrains b<2: want unsatisfiable, got %v", err)
	}
}

func TestChannelPriorityAndFeatures(t *testing.T) {
	t.Parallel()
	chs := []ChannelRecords{
		{Name: "first", Records: []repodata.Record{pkg("x", "1.0", 0)}},
		{Name: "second", Records: []repodata.Record{pkg("x", "2.0", 0), pkg("y", "1.0", 0)}},
	}
	if got := solved(t, Request{Channels: chs, Specs: specs(t, "x", "y")}); got["x"] != "1.0" || got["y"] != "1.0" {
		t.Errorf("strict: %v", got)
	}
	if _, err := Solve(context.Background(), Request{Channels: chs, Specs: specs(t, "x >=2")}); !errors.Is(err, ErrUnsatisfiable) {
		t.Errorf("strict priority hides second's x 2.0, got %v", err)
	}
	if got := solved(t, Request{Channels: chs, Specs: specs(t, "x"), ChannelPriority: Flexible}); got["x"] != "2.0" {
		t.Errorf("flexible: %v", got)
	}
	if got := solved(t, Request{Channels: chs, Specs: specs(t, "second::x"), ChannelPriority: Flexible}); got["x"] != "2.0" {
		t.Errorf("second::x: %v", got)
	}
	if got := solved(t, Request{Channels: chs, Specs: specs(t, "first::x"), ChannelPriority: Flexible}); got["x"] != "1.0" {
		t.Errorf("first::x: %v", got)
	}
	feat := pkg("z", "2.0", 0)
	feat.TrackFeatures = "debug"
	if got := solved(t, Request{Channels: one(feat, pkg("z", "1.0", 0)), Specs: specs(t, "z")}); got["z"] != "1.0" {
		t.Errorf("track_features should be avoided: %v", got)
	}
}

func TestVirtualPackages(t *testing.T) {
	t.Parallel()
	ch := one(pkg("p", "2", 0, "__glibc >=2.28"), pkg("p", "1", 0, "__glibc >=2.17"), pkg("__glibc", "9.9", 0))
	virt := func(v string) []repodata.Record { return []repodata.Record{{Name: "__glibc", Version: v, Build: "0"}} }
	if got := solved(t, Request{Channels: ch, Specs: specs(t, "p"), Virtual: virt("2.31")}); got["p"] != "2" || got["__glibc"] != "" {
		t.Errorf("glibc 2.31: %v (virtual packages are not part of the solution)", got)
	}
	if got := solved(t, Request{Channels: ch, Specs: specs(t, "p"), Virtual: virt("2.17")}); got["p"] != "1" {
		t.Errorf("glibc 2.17: %v", got)
	}
	_, err := Solve(context.Background(), Request{Channels: ch, Specs: specs(t, "p")})
	if !errors.Is(err, ErrUnsatisfiable) || !strings.Contains(err.Error(), "does not provide the virtual package __glibc") {
		t.Errorf("no glibc: %v", err)
	}
	_, err = Solve(context.Background(), Request{Channels: ch, Specs: specs(t, "p"), Virtual: virt("2.12")})
	if !errors.Is(err, ErrUnsatisfiable) || !strings.Contains(err.Error(), "provides only __glibc 2.12") {
		t.Errorf("old glibc: %v", err)
	}
}

func TestLocked(t *testing.T) {
	t.Parallel()
	ch := one(pkg("a", "1", 0, "b"), pkg("b", "1", 0), pkg("b", "2", 0))
	lock := []repodata.Record{pkg("b", "1", 0)}
	if got := solved(t, Request{Channels: ch, Specs: specs(t, "a"), Locked: lock}); got["b"] != "1" {
		t.Errorf("locked b should stay: %v", got)
	}
	if got := solved(t, Request{Channels: ch, Specs: specs(t, "a"), Locked: lock, Update: []string{"b"}}); got["b"] != "2" {
		t.Errorf("b updated: %v", got)
	}
	if got := solved(t, Request{Channels: ch, Specs: specs(t, "a", "b >=2"), Locked: lock}); got["b"] != "2" {
		t.Errorf("spec overrides the lock: %v", got)
	}
}

func TestUnsatisfiableExplanations(t *testing.T) {
	t.Parallel()
	ch := one(
		pkg("catboost", "1.0.6", 0, "python >=3.6,<3.10", "numpy"),
		pkg("python", "3.9.7", 0), pkg("python", "3.11.1", 0),
		pkg("numpy", "1.21", 0, "python"),
		pkg("tool", "1", 0, "catboost"), pkg("other", "1", 0),
	)
	cases := []struct {
		specs []string
		want  []string
	}{
		{[]string{"other", "catboost", "python 3.11.*"}, []string{"cannot satisfy catboost, python 3.11.*: ",
			"catboost 1.0.6 requires python >=3.6,<3.10, but python 3.11.* was requested"}},
		{[]string{"python 3.11.*", "tool"}, []string{"tool 1 requires catboost; catboost 1.0.6 requires python >=3.6,<3.10, but python 3.11.* was requested"}},
		{[]string{"scikit-learn"}, []string{"scikit-learn was requested, but no channel has a package named scikit-learn"}},
		{[]string{"numpy >=2"}, []string{"numpy >=2 was requested, but no numpy record matches it (the channels have numpy 1.21)"}},
	}
	for _, c := range cases {
		_, err := Solve(context.Background(), Request{Channels: ch, Specs: specs(t, c.specs...)})
		var ue *UnsatisfiableError
		if !errors.As(err, &ue) {
			t.Errorf("%v: want *UnsatisfiableError, got %v", c.specs, err)
			continue
		}
		t.Logf("%v: %v", c.specs, err)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v:\n got %s\nwant %s", c.specs, err, w)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	var recs []repodata.Record
	for i := range 30 {
		v := fmt.Sprint(i % 7)
		recs = append(recs, pkg(fmt.Sprintf("p%d", i%10), v, int64(i), fmt.Sprintf("p%d >=%d", (i+1)%10, i%3)))
	}
	r := Request{Channels: one(recs...), Specs: specs(t, "p0", "p5")}
	first, err := Solve(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, err := Solve(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again.Records) != fmt.Sprint(first.Records) {
			t.Fatalf("two solves differ:\n%v\n%v", first.Records, again.Records)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("stop"))
	_, err := Solve(ctx, Request{Channels: one(pkg("a", "1", 0)), Specs: specs(t, "a")})
	if err == nil || !strings.Contains(err.Error(), "stop") {
		t.Errorf("want the cancel cause, got %v", err)
	}
}
