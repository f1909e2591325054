package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/oracle"
	"github.com/sparkenv/sparkenv/internal/testutil"
)

// serveSnapshots serves the shared real snapshots as channels on loopback:
// "index4" (conda-index4.json, a file name → record map, split into
// linux-64 and noarch repodata), "pytorch" and "r".
func serveSnapshots(b *testing.B) map[string]string {
	b.Helper()
	mux := http.NewServeMux()
	add := func(channel, subdir string, body []byte) {
		mux.HandleFunc("/"+channel+"/"+subdir+"/repodata.json", func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })
	}
	empty := func(subdir string) []byte {
		return []byte(`{"info":{"subdir":"` + subdir + `"},"packages":{},"packages.conda":{}}`)
	}
	raw, err := os.ReadFile(testutil.CondaData(b, "conda-index4.json"))
	if err != nil {
		b.Fatal(err)
	}
	var recs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &recs); err != nil {
		b.Fatal(err)
	}
	bySubdir := map[string]map[string]json.RawMessage{"linux-64": {}, "noarch": {}}
	for fn, r := range recs {
		var s struct {
			Subdir string `json:"subdir"`
		}
		json.Unmarshal(r, &s)
		if bySubdir[s.Subdir] != nil {
			bySubdir[s.Subdir][fn] = r
		}
	}
	for sd, pk := range bySubdir {
		body, _ := json.Marshal(map[string]any{"info": map[string]string{"subdir": sd}, "packages": pk})
		add("index4", sd, body)
	}
	for name, file := range map[string]string{"pytorch": "pytorch-linux-64.repodata.json", "r": "r-linux-64.repodata.json"} {
		body, err := os.ReadFile(testutil.CondaData(b, file))
		if err != nil {
			b.Fatal(err)
		}
		add(name, "linux-64", body)
		add(name, "noarch", empty("noarch"))
	}
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return map[string]string{"index4": srv.URL + "/index4", "pytorch": srv.URL + "/pytorch", "r": srv.URL + "/r"}
}

// BenchmarkSolveVsRattler solves the same requests against the same
// channels with sparkenv (fetch, parse and solve, no cache) and with
// rattler's simpleSolve (npm @conda-org/rattler, which also fetches, parses
// and solves), side by side.
func BenchmarkSolveVsRattler(b *testing.B) {
	urls := serveSnapshots(b)
	cases := []struct {
		name     string
		channels []string
		specs    []string
	}{
		{"index4-numpy", []string{"index4"}, []string{"numpy"}},
		{"index4-jupyter", []string{"index4"}, []string{"jupyter", "python 3.6.*", "pandas", "scipy"}},
		{"r+index4-essentials", []string{"r", "index4"}, []string{"r-essentials"}},
	}
	testutil.Rattler(b)
	ctx := context.Background()
	for _, c := range cases {
		var chans []string
		for _, ch := range c.channels {
			chans = append(chans, urls[ch])
		}
		b.Run("sparkenv/"+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				e := &Engine{PkgsDir: b.TempDir()}
				if _, err := e.Solve(ctx, SolveRequest{Platform: "linux-64", Channels: chans, Specs: c.specs}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("rattler/"+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				// A fresh process each time: rattler keeps fetched indexes
				// in memory, and sparkenv's side starts from nothing too.
				// Starting node and loading the WebAssembly is not timed.
				b.StopTimer()
				o := oracle.ForTest(b)
				if _, err := o.Compare([][2]string{{"1", "2"}}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := o.SimpleSolve(ctx, c.specs, chans, []string{"linux-64", "noarch"}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				o.Close()
				b.StartTimer()
			}
		})
	}
}
