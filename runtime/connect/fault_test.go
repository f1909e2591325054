package connect_test

import (
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sparkenv/sparkenv/runtime/connect"
	"github.com/sparkenv/sparkenv/runtime/connect/connecttest"
)

// bigFile is a 1 MiB artifact (32 chunks) plus a small one batched after it.
func bigAndSmall(t *testing.T) (big, small connect.Artifact) {
	dir := t.TempDir()
	p := writeFile(t, dir, "env.pex", randomBytes(1<<20, 7), 0o755)
	big = artifactCA(t, connect.FileName(p), p)
	q := writeFile(t, dir, "deps.zip", zipBytes(t, "", map[string]string{"dep.py": "X = 1\n"}), 0o644)
	small = artifactCA(t, connect.PyFileName(q), q)
	return big, small
}

func TestStreamDroppedMidway(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode connecttest.Mode) {
		srv := connecttest.Start(t, connecttest.Config{Mode: mode})
		big, small := bigAndSmall(t)
		s := connect.Session{ID: connect.NewSessionID(), UserID: "erin"}
		c := dial(t, srv.URL())
		srv.DropStreamAfter(10, 1) // in the middle of the big file's chunks

		res, err := connect.Push(ctx(t), c, s, big, small)
		if err != nil {
			t.Fatal(err)
		}
		logs := srv.Streams()
		if len(logs) != 2 || res.Streams != 2 {
			t.Fatalf("%d streams on the server, %d by the client; want 2", len(logs), res.Streams)
		}
		if status.Code(logs[0].Err) != codes.Unavailable || len(logs[0].Requests) != 10 {
			t.Errorf("first stream: err %v after %d requests", logs[0].Err, len(logs[0].Requests))
		}
		if logs[1].Err != nil {
			t.Errorf("second stream: %v", logs[1].Err)
		}
		for _, a := range res.Artifacts {
			if a.Attempts != 2 || a.AlreadyPresent {
				t.Errorf("%s: %+v", a.Name, a)
			}
		}
		sameFile(t, stored(srv, s, big.Name), big.Path)
		sameFile(t, stored(srv, s, small.Name), small.Path)
	})
}

func TestCorruptChunkRetried(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode connecttest.Mode) {
		srv := connecttest.Start(t, connecttest.Config{Mode: mode})
		big, small := bigAndSmall(t)
		s := connect.Session{ID: connect.NewSessionID(), UserID: "frank"}
		c := dial(t, srv.URL())
		// Chunk 32 is the batch entry of the small file (the big one has
		// chunks 0-31): only that artifact must be sent again.
		srv.CorruptChunk(32, 1)
		res, err := connect.Push(ctx(t), c, s, big, small)
		if err != nil {
			t.Fatal(err)
		}
		logs := srv.Streams()
		if len(logs) != 2 {
			t.Fatalf("%d streams, want 2", len(logs))
		}
		if logs[0].Err != nil {
			t.Errorf("a CRC failure must not fail the RPC: %v", logs[0].Err)
		}
		var crcFailed []string
		for _, sm := range logs[0].Summaries {
			if !sm.CRCOK {
				crcFailed = append(crcFailed, sm.Name)
			}
		}
		if len(crcFailed) != 1 || crcFailed[0] != small.Name {
			t.Errorf("CRC failures in stream 1: %v, want [%s]", crcFailed, small.Name)
		}
		if r := logs[1].Requests; len(r) != 1 || r[0].Kind != "batch" || len(r[0].Names) != 1 || r[0].Names[0] != small.Name {
			t.Errorf("retry stream carried %+v, want only %s", r, small.Name)
		}
		if res.Artifacts[0].Attempts != 1 || res.Artifacts[1].Attempts != 2 {
			t.Errorf("attempts: %+v", res.Artifacts)
		}
		sameFile(t, stored(srv, s, big.Name), big.Path)
		sameFile(t, stored(srv, s, small.Name), small.Path)

		// A corrupted chunk of a chunked artifact drops the whole artifact.
		s2 := connect.Session{ID: connect.NewSessionID(), UserID: "frank"}
		srv.CorruptChunk(5, 1)
		if _, err := connect.Push(ctx(t), c, s2, big); err != nil {
			t.Fatal(err)
		}
		sameFile(t, stored(srv, s2, big.Name), big.Path)
	})
}

func TestCorruptionPersists(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode connecttest.Mode) {
		srv := connecttest.Start(t, connecttest.Config{Mode: mode})
		big, small := bigAndSmall(t)
		s := connect.Session{ID: connect.NewSessionID(), UserID: "gina"}
		c := dial(t, srv.URL())
		srv.CorruptChunk(0, -1) // every stream, first chunk: always the big file
		_, err := connect.Push(ctx(t), c, s, big, small)
		if err == nil {
			t.Fatal("push succeeded although every attempt was corrupted")
		}
		if !strings.Contains(err.Error(), big.Name+": CRC check failed") || strings.Contains(err.Error(), small.Name) {
			t.Errorf("error does not name exactly the failed artifact: %v", err)
		}
		if got := len(srv.Streams()); got != fastRetry.Attempts {
			t.Errorf("%d streams, want %d", got, fastRetry.Attempts)
		}
		names := srv.Names("gina", s.ID)
		if len(names) != 1 || names[0] != small.Name {
			t.Errorf("session holds %v, want only %s", names, small.Name)
		}
	})
}

func TestServerDownAtFirst(t *testing.T) {
	t.Parallel()
	srv := connecttest.Start(t, connecttest.Config{Mode: connecttest.Mode40})
	srv.RefuseConnections(2)
	_, small := bigAndSmall(t)
	c := dial(t, srv.URL("user_id=hal"))
	res, err := connect.Push(ctx(t), c, connect.Session{}, small)
	if err != nil {
		t.Fatal(err)
	}
	if srv.RefusedConnections() != 2 {
		t.Errorf("refused %d connections, want 2", srv.RefusedConnections())
	}
	if res.Artifacts[0].Attempts < 2 {
		t.Errorf("attempts = %d: the refusals were not retried", res.Artifacts[0].Attempts)
	}
	sameFile(t, filepath.Join(srv.SessionDir("hal", c.Session().ID), "pyfiles", strings.TrimPrefix(small.Name, "pyfiles/")), small.Path)

	// A server that stays down exhausts the policy with a clear error.
	srv.RefuseConnections(1000)
	c2 := dial(t, srv.URL("user_id=hal"))
	_, err = connect.Push(ctx(t), c2, connect.Session{}, small)
	if err == nil || !strings.Contains(err.Error(), "unavailable after 4 attempts") {
		t.Fatalf("err = %v", err)
	}
}
