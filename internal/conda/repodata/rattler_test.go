package repodata

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

const solveScript = `
const r = require(process.argv[1] + "/dist/rattler.node.cjs");
(async () => {
  const [specs, channels, platforms] = JSON.parse(process.argv[2]);
  try {
    const res = await r.simpleSolve(specs, channels, platforms);
    console.log(JSON.stringify(res.map(p => p.url).sort()));
  } catch (e) { console.error(String(e)); process.exit(1); }
})();
`

// rattlerSolve serves dir over HTTP on loopback and asks rattler to solve
// specs against it; it returns the solution's URLs (relative to the server)
// and the paths rattler requested.
func rattlerSolve(t *testing.T, dir string, specs []string) (urls, requested []string) {
	t.Helper()
	pkg := testutil.Rattler(t)
	node := testutil.Tool(t, "node")
	var mu sync.Mutex
	fileServer := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requested = append(requested, r.URL.Path)
		mu.Unlock()
		fileServer.ServeHTTP(w, r)
	}))
	defer srv.Close()
	args, _ := json.Marshal([]any{specs, []string{srv.URL + "/"}, []string{"linux-64", "noarch"}})
	cmd := exec.Command(node, "-e", solveScript, pkg, string(args))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rattler: %v\n%s", err, exitStderr(err))
	}
	if err := json.Unmarshal(out, &urls); err != nil {
		t.Fatalf("rattler output %q: %v", out, err)
	}
	for i, u := range urls {
		urls[i] = strings.TrimPrefix(u, srv.URL)
	}
	sort.Strings(requested)
	return urls, requested
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// TestRattlerReadsWrittenChannel has rattler, an independent client, solve
// against channels written by Write: once from repodata.json only, once from
// the shards only. Both must give the same, non-trivial solution.
func TestRattlerReadsWrittenChannel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node")
	}
	t.Parallel()
	subdirs := index4BySubdir(t)
	write := func(dir string, opts WriteOptions) {
		for sd, data := range subdirs {
			r, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := Write(dir, sd, r.Records(), opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	plain := t.TempDir()
	write(plain, WriteOptions{})
	sharded := t.TempDir()
	write(sharded, WriteOptions{Shards: true})
	for _, sd := range []string{"linux-64", "noarch"} {
		// leave the shards as the only index rattler can find
		if err := os.Remove(filepath.Join(sharded, sd, "repodata.json")); err != nil {
			t.Fatal(err)
		}
	}
	specs := []string{"numpy", "pandas", "python 3.6.*"}
	want, _ := rattlerSolve(t, plain, specs)
	got, requested := rattlerSolve(t, sharded, specs)
	if len(want) < 5 {
		t.Fatalf("solution too small to mean anything: %v", want)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("solutions differ (-json +shards):\n%s", d)
	}
	var shardReqs int
	for _, p := range requested {
		if strings.Contains(p, "/shards/") {
			shardReqs++
		}
	}
	if shardReqs == 0 {
		t.Fatalf("rattler fetched no shard: %v", requested)
	}
	t.Logf("solution of %d packages; rattler fetched %d shards", len(got), shardReqs)
}
