package connect_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sparkenv/sparkenv/runtime/connect"
	"github.com/sparkenv/sparkenv/runtime/connect/connecttest"
)

// bundle is a set of artifacts like the ones sparkenv pushes: a chunked
// environment archive, several small pyfiles and a PEX-like file.
type bundle struct {
	archive connect.Artifact
	pyfiles []connect.Artifact
	pex     connect.Artifact
}

func (b bundle) all() []connect.Artifact {
	out := []connect.Artifact{b.archive}
	out = append(out, b.pyfiles...)
	return append(out, b.pex)
}

const pyfileSize = 10000

func makeBundle(t *testing.T, dir string) bundle {
	t.Helper()
	var b bundle
	// 1.5 MiB of incompressible data keeps the archive above 1 MiB.
	tarGz(t, filepath.Join(dir, "env.tar.gz"), []tarEntry{
		{name: "lib", dir: true, mode: 0o755},
		{name: "lib/blob.bin", data: randomBytes(3<<19, 1), mode: 0o644},
		{name: "bin", dir: true, mode: 0o755},
		{name: "bin/hello", data: []byte("#!/bin/sh\necho hello\n"), mode: 0o755},
	})
	b.archive = artifactCA(t, connect.ArchiveName("env.tar.gz", "environment"), filepath.Join(dir, "env.tar.gz"))
	for i := 0; i < 5; i++ {
		src := fmt.Sprintf("VALUE = %d\n", i)
		src += "#" + strings.Repeat("x", pyfileSize-len(src)-2) + "\n"
		p := writeFile(t, dir, fmt.Sprintf("mod%d.py", i), []byte(src), 0o644)
		b.pyfiles = append(b.pyfiles, artifactCA(t, connect.PyFileName(p), p))
	}
	pex := zipBytes(t, "#!/usr/bin/env python3\n", map[string]string{"__main__.py": "print('pex ok')\n"})
	p := writeFile(t, dir, "env.pex", pex, 0o755)
	b.pex = artifactCA(t, connect.FileName(p), p)
	return b
}

func TestPush(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode connecttest.Mode) {
		srv := connecttest.Start(t, connecttest.Config{Mode: mode})
		dir := t.TempDir()
		b := makeBundle(t, dir)
		s := connect.Session{ID: connect.NewSessionID(), UserID: "alice"}
		var mu sync.Mutex
		progress := map[string]int64{}
		c := dial(t, srv.URL("x-team=ml"), connect.WithClientType("sparkenv/test"), connect.WithProgress(func(name string, sent, total int64) {
			mu.Lock()
			defer mu.Unlock()
			// Each attempt starts again from its first message.
			if sent < progress[name] && sent > connect.ChunkSize || sent > total {
				t.Errorf("progress of %s went from %d to %d of %d", name, progress[name], sent, total)
			}
			progress[name] = sent
		}))

		res, err := connect.Push(ctx(t), c, s, b.all()...)
		if err != nil {
			t.Fatal(err)
		}
		if res.Streams != 1 {
			t.Errorf("streams = %d, want 1", res.Streams)
		}
		for _, a := range b.all() {
			if progress[a.Name] != a.Size {
				t.Errorf("progress of %s ended at %d, want %d", a.Name, progress[a.Name], a.Size)
			}
			sameFile(t, stored(srv, s, a.Name), a.Path)
		}

		// What arrived: the archive chunked, the small files in two batches.
		logs := srv.Streams()
		if len(logs) != 1 || logs[0].Err != nil {
			t.Fatalf("stream logs: %+v", logs)
		}
		reqs := logs[0].Requests
		wantChunks := (b.archive.Size + connect.ChunkSize - 1) / connect.ChunkSize
		if reqs[0].Kind != "begin_chunk" || reqs[0].Names[0] != b.archive.Name || reqs[0].NumChunks != wantChunks || reqs[0].TotalBytes != b.archive.Size {
			t.Fatalf("first request = %+v, want begin_chunk of %s with %d chunks, %d bytes", reqs[0], b.archive.Name, wantChunks, b.archive.Size)
		}
		var chunks, batches []connecttest.Request
		for _, r := range reqs[1:] {
			switch r.Kind {
			case "chunk":
				chunks = append(chunks, r)
			case "batch":
				batches = append(batches, r)
			default:
				t.Errorf("unexpected %s request", r.Kind)
			}
		}
		if int64(len(chunks)) != wantChunks-1 {
			t.Errorf("%d chunk requests, want %d", len(chunks), wantChunks-1)
		}
		for i, r := range append([]connecttest.Request{reqs[0]}, chunks...) {
			if r.DataBytes != connect.ChunkSize && i != len(chunks) {
				t.Errorf("chunk %d carries %d bytes", i, r.DataBytes)
			}
		}
		// 3×10000 bytes fit in 32 KiB, a fourth does not: [py0 py1 py2] then
		// [py3 py4 pex].
		wantBatches := [][]string{
			{b.pyfiles[0].Name, b.pyfiles[1].Name, b.pyfiles[2].Name},
			{b.pyfiles[3].Name, b.pyfiles[4].Name, b.pex.Name},
		}
		if len(batches) != len(wantBatches) {
			t.Fatalf("%d batches, want %d: %+v", len(batches), len(wantBatches), batches)
		}
		for i, want := range wantBatches {
			if strings.Join(batches[i].Names, " ") != strings.Join(want, " ") {
				t.Errorf("batch %d = %v, want %v", i, batches[i].Names, want)
			}
			if batches[i].DataBytes > connect.ChunkSize {
				t.Errorf("batch %d carries %d bytes", i, batches[i].DataBytes)
			}
		}
		for _, r := range reqs {
			if r.SessionID != s.ID || r.UserID != "alice" || r.UserName != "alice" || r.ClientType != "sparkenv/test" {
				t.Fatalf("request lacks session or user context: %+v", r)
			}
		}
		if got := logs[0].Metadata.Get("x-team"); len(got) != 1 || got[0] != "ml" {
			t.Errorf("metadata x-team = %v, want [ml]", got)
		}
		if len(logs[0].Summaries) != len(b.all()) {
			t.Errorf("%d summaries for %d artifacts", len(logs[0].Summaries), len(b.all()))
		}
		if errs := srv.UnpackErrors(); len(errs) != 0 {
			t.Fatalf("unpack: %v", errs)
		}
		if _, err := os.Stat(filepath.Join(srv.SessionDir("alice", s.ID), "environment", "lib", "blob.bin")); err != nil {
			t.Fatalf("archive not unpacked into its alias: %v", err)
		}

		// Session ids: 4.x reports them, 3.5 does not.
		if mode == connecttest.Mode40 {
			if res.ServerSideSessionID == "" || res.ServerSideSessionID != srv.ServerSideSessionID("alice", s.ID) {
				t.Errorf("server-side session id = %q, server has %q", res.ServerSideSessionID, srv.ServerSideSessionID("alice", s.ID))
			}
		} else if res.ServerSideSessionID != "" {
			t.Errorf("3.5 reported server-side session id %q", res.ServerSideSessionID)
		}

		// Pushing the same bundle again succeeds and changes nothing.
		mu.Lock()
		progress = map[string]int64{} // a new push starts from zero
		mu.Unlock()
		before := srv.Names("alice", s.ID)
		res2, err := connect.Push(ctx(t), c, s, b.all()...)
		if err != nil {
			t.Fatalf("re-push: %v", err)
		}
		for _, a := range res2.Artifacts {
			if a.AlreadyPresent != (mode == connecttest.Mode35) {
				t.Errorf("re-push of %s: AlreadyPresent = %v on %s", a.Name, a.AlreadyPresent, mode)
			}
		}
		if after := srv.Names("alice", s.ID); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Errorf("re-push changed the session: %v -> %v", before, after)
		}

		// New content gets a new name, beside the old one.
		p := writeFile(t, dir, "env.pex", zipBytes(t, "#!/usr/bin/env python3\n", map[string]string{"__main__.py": "print('pex v2')\n"}), 0o755)
		pex2 := artifactCA(t, connect.FileName(p), p)
		if pex2.Name == b.pex.Name {
			t.Fatalf("different content, same name %s", pex2.Name)
		}
		if _, err := connect.Push(ctx(t), c, s, pex2); err != nil {
			t.Fatal(err)
		}
		sameFile(t, stored(srv, s, pex2.Name), p)
		if got := len(srv.Names("alice", s.ID)); got != len(before)+1 {
			t.Errorf("session holds %d names, want %d", got, len(before)+1)
		}
	})
}

// Names that are not content-addressed cannot be re-pushed safely; Push
// says why instead of guessing.
func TestPushPlainNameTwice(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode connecttest.Mode) {
		srv := connecttest.Start(t, connecttest.Config{Mode: mode})
		dir := t.TempDir()
		c := dial(t, srv.URL("user_id=bob"))
		p := writeFile(t, dir, "notes.txt", []byte("one"), 0o644)
		a := connect.Artifact{Name: connect.FileName(p), Path: p}
		if _, err := connect.Push(ctx(t), c, connect.Session{}, a); err != nil {
			t.Fatal(err)
		}
		// Same bytes again: 4.x accepts, 3.5 refuses and the client cannot
		// tell whether the session holds these bytes.
		_, err := connect.Push(ctx(t), c, connect.Session{}, a)
		if mode == connecttest.Mode40 && err != nil {
			t.Fatalf("4.x refused identical bytes: %v", err)
		}
		if mode == connecttest.Mode35 && (err == nil || !strings.Contains(err.Error(), "not content-addressed")) {
			t.Fatalf("3.5 re-push of a plain name: err = %v", err)
		}
		// Different bytes under the same name fail on both.
		writeFile(t, dir, "notes.txt", []byte("two!"), 0o644)
		a.Size = 0
		_, err = connect.Push(ctx(t), c, connect.Session{}, a)
		if err == nil || !strings.Contains(err.Error(), a.Name) {
			t.Fatalf("push of different bytes under %s: err = %v", a.Name, err)
		}
		if mode == connecttest.Mode40 && !strings.Contains(err.Error(), "different content") {
			t.Errorf("4.x error does not say the content differs: %v", err)
		}
		if got := srv.Names("bob", c.Session().ID); len(got) != 1 {
			t.Errorf("session names = %v", got)
		}
	})
}

func TestStatus(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode connecttest.Mode) {
		srv := connecttest.Start(t, connecttest.Config{Mode: mode})
		dir := t.TempDir()
		c := dial(t, srv.URL("user_id=carol"))
		blob := writeFile(t, dir, "blob", []byte("cached relation"), 0o644)
		a, err := connect.NewArtifact(connect.FileName("blob.txt"), blob)
		if err != nil {
			t.Fatal(err)
		}
		cache := connect.Artifact{Name: connect.CacheName(a.SHA256), Path: blob, SHA256: a.SHA256}
		missing := connect.CacheName(strings.Repeat("0", 64))
		if _, err := connect.Push(ctx(t), c, connect.Session{}, a, cache); err != nil {
			t.Fatal(err)
		}
		got, err := connect.Status(ctx(t), c, connect.Session{}, cache.Name, missing, a.Name)
		if err != nil {
			t.Fatal(err)
		}
		// Only cache/ names are reported, even for a file that is there.
		want := map[string]bool{cache.Name: true, missing: false, a.Name: false}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("status[%s] = %v, want %v", k, got[k], v)
			}
		}
		if srv.StatusCalls() != 1 {
			t.Errorf("status calls = %d", srv.StatusCalls())
		}
	})
}

// A 4.x server that lost the session (restart, release) must not look like
// success: the artifacts pushed before are gone.
func TestSessionChanged(t *testing.T) {
	srv := connecttest.Start(t, connecttest.Config{Mode: connecttest.Mode40})
	dir := t.TempDir()
	c := dial(t, srv.URL("user_id=dan"))
	p := writeFile(t, dir, "a.py", []byte("A = 1\n"), 0o644)
	a := artifactCA(t, connect.PyFileName(p), p)
	if _, err := connect.Push(ctx(t), c, connect.Session{}, a); err != nil {
		t.Fatal(err)
	}
	if err := srv.RestartSession("dan", c.Session().ID); err != nil {
		t.Fatal(err)
	}
	_, err := connect.Push(ctx(t), c, connect.Session{}, a)
	if err == nil || !strings.Contains(err.Error(), "SESSION_CHANGED") {
		t.Fatalf("push after the session changed: err = %v", err)
	}
	// A fresh client has seen nothing, so the server accepts it; the first
	// client still refuses the new server-side id.
	c2 := dial(t, srv.URL("user_id=dan", "session_id="+c.Session().ID))
	if _, err := connect.Push(ctx(t), c2, connect.Session{}, a); err != nil {
		t.Fatal(err)
	}
	if _, err := connect.Status(ctx(t), c, connect.Session{}, "cache/x"); err == nil || !strings.Contains(err.Error(), "SESSION_CHANGED") {
		t.Fatalf("status after the session changed: err = %v", err)
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	srv := connecttest.Start(t, connecttest.Config{Mode: connecttest.Mode40, Token: "s3cret"})
	dir := t.TempDir()
	p := writeFile(t, dir, "a.py", []byte("A = 1\n"), 0o644)
	a := artifactCA(t, connect.PyFileName(p), p)

	c := dial(t, srv.URL("token=s3cret"), connect.PlaintextToken())
	if _, err := connect.Push(ctx(t), c, connect.Session{}, a); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	c = dial(t, srv.URL("token=wrong"), connect.PlaintextToken())
	if _, err := connect.Push(ctx(t), c, connect.Session{}, a); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("with a wrong token: err = %v", err)
	}
	// Without PlaintextToken a token means TLS, which this server lacks.
	c = dial(t, srv.URL("token=s3cret"), connect.WithRetry(connect.RetryPolicy{Attempts: 1}))
	if _, err := connect.Push(ctx(t), c, connect.Session{}, a); err == nil {
		t.Fatal("a token went over a plaintext connection without PlaintextToken")
	}
}

func TestPushRefusesBadInput(t *testing.T) {
	t.Parallel()
	srv := connecttest.Start(t, connecttest.Config{})
	dir := t.TempDir()
	c := dial(t, srv.URL())
	p := writeFile(t, dir, "a.py", []byte("A = 1\n"), 0o644)
	big := writeFile(t, dir, "big.pex", randomBytes(200<<10, 3), 0o755)
	for _, tc := range []struct {
		name string
		s    connect.Session
		a    []connect.Artifact
		want string
	}{
		{"bad session", connect.Session{ID: "nope"}, []connect.Artifact{{Name: "pyfiles/a.py", Path: p}}, "not a UUID"},
		{"twice", connect.Session{}, []connect.Artifact{{Name: "pyfiles/a.py", Path: p}, {Name: "pyfiles/a.py", Path: p}}, "twice"},
		{"bad name", connect.Session{}, []connect.Artifact{{Name: "../a.py", Path: p}}, "unknown kind"},
		{"missing file", connect.Session{}, []connect.Artifact{{Name: "pyfiles/b.py", Path: filepath.Join(dir, "b.py")}}, "no such file"},
		{"wrong size", connect.Session{}, []connect.Artifact{{Name: "pyfiles/a.py", Path: p, Size: 99}}, "changed"},
		{"wrong digest", connect.Session{}, []connect.Artifact{{Name: "pyfiles/a.py", Path: p, SHA256: strings.Repeat("ab", 32)}}, "sha256"},
		{"wrong digest, chunked", connect.Session{}, []connect.Artifact{{Name: "files/big.pex", Path: big, SHA256: strings.Repeat("ab", 32)}}, "sha256"},
	} {
		_, err := connect.Push(ctx(t), c, tc.s, tc.a...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if got := srv.Names("", c.Session().ID); len(got) != 0 {
		t.Errorf("bad input committed %v", got)
	}
}

func TestDialDefaults(t *testing.T) {
	t.Parallel()
	srv := connecttest.Start(t, connecttest.Config{Mode: connecttest.Mode40})
	c := dial(t, srv.URL("user_id=kim", "user_agent=notebook", "x-tenant=t1"), connect.WithClientType("sparkenv/test"))
	cs := c.ConnString()
	if !connect.IsUUID(cs.SessionID) || !strings.Contains(cs.String(), "session_id="+cs.SessionID) {
		t.Fatalf("Dial did not pick and render a session id: %s", cs.String())
	}
	if s := c.Session(); s.ID != cs.SessionID || s.UserID != "kim" {
		t.Fatalf("Session() = %+v", s)
	}
	p := writeFile(t, t.TempDir(), "a.py", []byte("A = 1\n"), 0o644)
	if _, err := connect.Push(ctx(t), c, connect.Session{}, artifactCA(t, connect.PyFileName(p), p)); err != nil {
		t.Fatal(err)
	}
	r := srv.Streams()[0].Requests[0]
	if r.ClientType != "notebook sparkenv/test" || r.SessionID != cs.SessionID || r.UserID != "kim" {
		t.Errorf("request = %+v", r)
	}
	if _, err := connect.Status(ctx(t), c, connect.Session{}, "cache/x"); err != nil {
		t.Fatal(err)
	}
	// Unknown parameters travel as metadata on unary calls too.
	if got := srv.LastStatusMetadata().Get("x-tenant"); len(got) != 1 || got[0] != "t1" {
		t.Errorf("status metadata x-tenant = %v", got)
	}
	if got := srv.Streams()[0].Metadata.Get("user_agent"); len(got) != 0 {
		t.Errorf("a defined parameter leaked into metadata: %v", got)
	}
}
