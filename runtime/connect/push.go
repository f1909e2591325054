package connect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sparkenv/sparkenv/runtime/connect/internal/pb"
)

// ChunkSize is the payload of one AddArtifacts message, as in the official
// clients: files up to this size travel together in batches, larger ones in
// chunks of this size.
const ChunkSize = 32 << 10

// PushedArtifact is the outcome for one artifact.
type PushedArtifact struct {
	Name string
	Size int64
	// Attempts counts the streams that carried the artifact.
	Attempts int
	// AlreadyPresent means a Spark 3.5 server refused the artifact as a
	// name it already holds. The name is content-addressed, so the session
	// holds these very bytes.
	AlreadyPresent bool
}

// PushResult describes a successful Push.
type PushResult struct {
	Session   Session
	Artifacts []PushedArtifact // in the order given to Push
	Streams   int              // AddArtifacts streams opened
	Requests  int              // messages sent
	BytesSent int64            // artifact bytes sent, retries included
	// ServerSideSessionID is what a Spark 4.x server reported; empty for 3.5.
	ServerSideSessionID string
}

// item is one artifact in flight.
type item struct {
	a   Artifact
	out *PushedArtifact
}

// Push places artifacts in a Spark Connect session with AddArtifacts.
// Small files share batch messages and large ones are streamed from disk in
// 32 KiB chunks, each with its CRC-32. Push checks every summary the server
// returns: an artifact whose CRC failed or that the server did not
// acknowledge is sent again in a new stream. A stream that breaks
// (UNAVAILABLE: server down, connection dropped) is retried with
// exponential backoff. Content-addressed names (ContentAddressed) make all
// of this safe to repeat: a Spark 3.5 server's refusal of a name it already
// holds is then success. An empty session.ID means the client's session.
func Push(ctx context.Context, c *Client, session Session, artifacts ...Artifact) (*PushResult, error) {
	s, err := c.resolve(session)
	if err != nil {
		return nil, err
	}
	res := &PushResult{Session: s, Artifacts: make([]PushedArtifact, len(artifacts))}
	seen := map[string]bool{}
	items := make([]*item, len(artifacts))
	for i := range artifacts {
		a := artifacts[i]
		if err := CheckName(a.Name); err != nil {
			return nil, err
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("artifact %s is given twice", a.Name)
		}
		seen[a.Name] = true
		if err := statArtifact(&a); err != nil {
			return nil, err
		}
		res.Artifacts[i] = PushedArtifact{Name: a.Name, Size: a.Size}
		items[i] = &item{a: a, out: &res.Artifacts[i]}
	}
	if len(items) == 0 {
		return res, nil
	}
	if err := c.pushGroup(ctx, s, items, res); err != nil {
		return nil, err
	}
	c.mu.Lock()
	res.ServerSideSessionID = c.serverSessions[sessionKey{s.UserID, s.ID}]
	c.mu.Unlock()
	return res, nil
}

// pushGroup sends items in one stream, then resends whatever failed, within
// the retry policy.
func (c *Client) pushGroup(ctx context.Context, s Session, items []*item, res *PushResult) error {
	pending := items
	wait := c.o.retry.Initial
	for {
		for _, it := range pending {
			it.out.Attempts++
		}
		resp, err := c.pushStream(ctx, s, pending, res)
		if err == nil {
			err = c.checkSession(s, resp.GetSessionId(), resp.GetServerSideSessionId())
			if err != nil {
				return err
			}
			failed, reasons := checkSummaries(pending, resp)
			if len(failed) == 0 {
				return nil
			}
			if pending[0].out.Attempts >= c.o.retry.Attempts {
				return fmt.Errorf("spark connect: %d artifact(s) not accepted after %d attempts: %s", len(failed), pending[0].out.Attempts, strings.Join(reasons, "; "))
			}
			pending = failed
		} else {
			if ctxErr := context.Cause(ctx); ctx.Err() != nil {
				return fmt.Errorf("spark connect: push %s: %w", names(pending), ctxErr)
			}
			var local *localError
			if errors.As(err, &local) {
				return local.err
			}
			st, ok := status.FromError(err)
			if !ok {
				return fmt.Errorf("spark connect %s: push %s: %w", c.cs.Addr(), names(pending), err)
			}
			switch st.Code() {
			case codes.Unavailable:
				if pending[0].out.Attempts >= c.o.retry.Attempts {
					return fmt.Errorf("spark connect %s: push %s: server unavailable after %d attempts: %w", c.cs.Addr(), names(pending), pending[0].out.Attempts, err)
				}
			case codes.Unknown, codes.AlreadyExists:
				return c.pushSeparately(ctx, s, pending, res, st)
			default:
				return fmt.Errorf("spark connect %s: push %s: %w", c.cs.Addr(), names(pending), err)
			}
		}
		// gRPC's own reconnect backoff (a second and growing) would fail
		// the next attempt at once; start a connection attempt now, so that
		// it has the whole wait to succeed and the policy paces attempts.
		c.conn.ResetConnectBackoff()
		c.conn.Connect()
		if err := c.o.sleep(ctx, wait); err != nil {
			return fmt.Errorf("spark connect: push %s: %w", names(pending), err)
		}
		wait = min(2*wait, c.o.retry.Max)
	}
}

// pushSeparately handles the error a server gives when a name is already in
// the session (3.5: UNKNOWN, usually without a message, and the stream's
// later artifacts are not committed; 4.x: ALREADY_EXISTS, only for different
// bytes). Sending each artifact in its own stream finds out which one.
func (c *Client) pushSeparately(ctx context.Context, s Session, items []*item, res *PushResult, st *status.Status) error {
	if len(items) > 1 {
		var errs []error
		for _, it := range items {
			if err := c.pushGroup(ctx, s, []*item{it}, res); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	it := items[0]
	msg := st.Message()
	switch {
	case st.Code() == codes.AlreadyExists:
		return fmt.Errorf("spark connect: artifact %s is already in session %s with different content (%s); give the new bytes a new name, e.g. with ContentAddressed", it.a.Name, s.ID, msg)
	case IsContentAddressed(it.a) && (msg == "" || strings.Contains(msg, "Duplicate Artifact") || strings.Contains(msg, "ARTIFACT_ALREADY_EXISTS")):
		it.out.AlreadyPresent = true
		return nil
	case msg == "":
		return fmt.Errorf("spark connect: artifact %s failed with UNKNOWN and no message; a Spark 3.5 server answers so when the name is already in the session, and the name is not content-addressed, so its content there may differ", it.a.Name)
	default:
		return fmt.Errorf("spark connect: artifact %s: %w", it.a.Name, st.Err())
	}
}

// checkSummaries returns the items the server did not accept, with reasons.
func checkSummaries(items []*item, resp *pb.AddArtifactsResponse) (failed []*item, reasons []string) {
	crc := map[string]bool{}
	for _, sm := range resp.GetArtifacts() {
		ok, seen := crc[sm.GetName()]
		crc[sm.GetName()] = sm.GetIsCrcSuccessful() && (ok || !seen)
	}
	for _, it := range items {
		ok, seen := crc[it.a.Name]
		switch {
		case !seen:
			failed = append(failed, it)
			reasons = append(reasons, it.a.Name+": not acknowledged by the server")
		case !ok:
			failed = append(failed, it)
			reasons = append(reasons, it.a.Name+": CRC check failed on the server")
		}
	}
	return failed, reasons
}

// localError marks a failure on this side (a file that changed while being
// sent), which no retry fixes.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// pushStream sends items in one AddArtifacts stream and returns the
// server's answer.
func (c *Client) pushStream(ctx context.Context, s Session, items []*item, res *PushResult) (*pb.AddArtifactsResponse, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stream, err := c.stub.AddArtifacts(ctx, grpc.ForceCodecV2(pb.Codec{}))
	if err != nil {
		return nil, err
	}
	res.Streams++
	uc := c.userContext(s)
	clientType := c.o.clientType
	observed := c.observed(s)
	newReq := func() *pb.AddArtifactsRequest {
		return &pb.AddArtifactsRequest{
			SessionId:                         s.ID,
			UserContext:                       uc,
			ClientType:                        &clientType,
			ClientObservedServerSideSessionId: observed,
		}
	}
	send := func(req *pb.AddArtifactsRequest, payload int) error {
		if err := stream.Send(req); err != nil {
			if err == io.EOF {
				// The server ended the stream; its status says why.
				if _, err = stream.CloseAndRecv(); err == nil {
					err = status.Error(codes.Internal, "server closed the stream before the client finished")
				}
			}
			return err
		}
		res.Requests++
		res.BytesSent += int64(payload)
		return nil
	}
	// abort makes sure the server commits nothing of a stream this side
	// gave up on: a cancelled stream never half-closes.
	abort := func(err error) error {
		cancel(err)
		return &localError{err: err}
	}

	var batch []*pb.AddArtifactsRequest_SingleChunkArtifact
	var batchItems []*item
	var batchBytes int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		req := newReq()
		req.Payload = &pb.AddArtifactsRequest_Batch_{Batch: &pb.AddArtifactsRequest_Batch{Artifacts: batch}}
		if err := send(req, int(batchBytes)); err != nil {
			return err
		}
		for _, it := range batchItems {
			c.progress(it.a.Name, it.a.Size, it.a.Size)
		}
		batch, batchItems, batchBytes = nil, nil, 0
		return nil
	}
	for _, it := range items {
		if it.a.Size > ChunkSize {
			if err := flush(); err != nil {
				return nil, err
			}
			if err := c.sendChunked(it, newReq, send, abort); err != nil {
				return nil, err
			}
			continue
		}
		if batchBytes+it.a.Size > ChunkSize {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		data, err := readSmall(it.a)
		if err != nil {
			return nil, abort(err)
		}
		batch = append(batch, &pb.AddArtifactsRequest_SingleChunkArtifact{
			Name: it.a.Name,
			Data: &pb.AddArtifactsRequest_ArtifactChunk{Data: data, Crc: crc(data)},
		})
		batchItems = append(batchItems, it)
		batchBytes += it.a.Size
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return stream.CloseAndRecv()
}

func (c *Client) progress(name string, sent, total int64) {
	if c.o.progress != nil {
		c.o.progress(name, sent, total)
	}
}

// sendChunked streams one large artifact from disk: a begin_chunk carrying
// the first 32 KiB, then the remaining chunks. A reader goroutine keeps a
// few chunks ahead (read, CRC, sha256) while the previous ones are encoded
// and sent.
func (c *Client) sendChunked(it *item, newReq func() *pb.AddArtifactsRequest, send func(*pb.AddArtifactsRequest, int) error, abort func(error) error) error {
	a := it.a
	f, err := os.Open(a.Path)
	if err != nil {
		return abort(fmt.Errorf("artifact %s: %w", a.Name, err))
	}
	defer f.Close()
	numChunks := (a.Size + ChunkSize - 1) / ChunkSize
	chunks := make(chan *pb.AddArtifactsRequest_ArtifactChunk, 4)
	var readErr error // set before chunks is closed
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(chunks)
		readErr = readChunks(f, a, numChunks, func(ch *pb.AddArtifactsRequest_ArtifactChunk) bool {
			select {
			case chunks <- ch:
				return true
			case <-done:
				return false
			}
		})
	}()
	var sent int64
	for i := int64(0); i < numChunks; i++ {
		chunk, ok := <-chunks
		if !ok {
			return abort(readErr)
		}
		req := newReq()
		if i == 0 {
			req.Payload = &pb.AddArtifactsRequest_BeginChunk{BeginChunk: &pb.AddArtifactsRequest_BeginChunkedArtifact{
				Name: a.Name, TotalBytes: a.Size, NumChunks: numChunks, InitialChunk: chunk,
			}}
		} else {
			req.Payload = &pb.AddArtifactsRequest_Chunk{Chunk: chunk}
		}
		if err := send(req, len(chunk.Data)); err != nil {
			return err
		}
		sent += int64(len(chunk.Data))
		c.progress(a.Name, sent, a.Size)
	}
	return nil
}

// readChunks reads a's file in chunks and hands them on; it checks the size
// and the sha256 before handing on the last chunk, so that a server never
// receives a complete artifact with bytes other than the ones described.
func readChunks(f *os.File, a Artifact, numChunks int64, emit func(*pb.AddArtifactsRequest_ArtifactChunk) bool) error {
	var h hash.Hash
	if a.SHA256 != "" && !unchangedSinceHashed(f, a) {
		h = sha256.New()
	}
	var read int64
	for i := int64(0); i < numChunks; i++ {
		// A fresh buffer per message: gRPC may hold on to a message after
		// Send returns.
		buf := make([]byte, min(int64(ChunkSize), a.Size-read))
		if _, err := io.ReadFull(f, buf); err != nil {
			return fmt.Errorf("artifact %s: reading %s at byte %d of %d (the file shrank?): %w", a.Name, a.Path, read, a.Size, err)
		}
		read += int64(len(buf))
		if h != nil {
			h.Write(buf)
		}
		if i == numChunks-1 {
			var one [1]byte
			if n, _ := f.Read(one[:]); n > 0 {
				return fmt.Errorf("artifact %s: %s grew beyond %d bytes while being sent", a.Name, a.Path, a.Size)
			}
			if h != nil {
				if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, a.SHA256) {
					return fmt.Errorf("artifact %s: %s has sha256 %s, want %s (the file changed?)", a.Name, a.Path, got, a.SHA256)
				}
			} else if !unchangedSinceHashed(f, a) {
				return fmt.Errorf("artifact %s: %s changed while it was sent", a.Name, a.Path)
			}
		}
		if !emit(&pb.AddArtifactsRequest_ArtifactChunk{Data: buf, Crc: crc(buf)}) {
			return nil
		}
	}
	return nil
}

// readSmall reads an artifact that fits in one batch entry and checks it.
func readSmall(a Artifact) ([]byte, error) {
	data, err := os.ReadFile(a.Path)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", a.Name, err)
	}
	if int64(len(data)) != a.Size {
		return nil, fmt.Errorf("artifact %s: %s has %d bytes, expected %d (the file changed?)", a.Name, a.Path, len(data), a.Size)
	}
	if a.SHA256 != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, a.SHA256) {
			return nil, fmt.Errorf("artifact %s: %s has sha256 %s, want %s (the file changed?)", a.Name, a.Path, got, a.SHA256)
		}
	}
	return data, nil
}

// crc is the chunk checksum Spark expects: zlib's CRC-32 as a non-negative
// int64.
func crc(b []byte) int64 { return int64(crc32.ChecksumIEEE(b)) }

func names(items []*item) string {
	ns := make([]string, len(items))
	for i, it := range items {
		ns[i] = it.a.Name
	}
	return strings.Join(ns, ", ")
}

// Status asks which of names the session holds. Spark servers report
// "exists" only for cache/ names (CacheName); every other name reads as
// absent whether or not it was pushed.
func Status(ctx context.Context, c *Client, session Session, names ...string) (map[string]bool, error) {
	s, err := c.resolve(session)
	if err != nil {
		return nil, err
	}
	ct := c.o.clientType
	resp, err := c.stub.ArtifactStatus(ctx, &pb.ArtifactStatusesRequest{
		SessionId:                         s.ID,
		UserContext:                       c.userContext(s),
		ClientType:                        &ct,
		Names:                             names,
		ClientObservedServerSideSessionId: c.observed(s),
	})
	if err != nil {
		return nil, fmt.Errorf("spark connect %s: artifact status: %w", c.cs.Addr(), err)
	}
	if err := c.checkSession(s, resp.GetSessionId(), resp.GetServerSideSessionId()); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = resp.GetStatuses()[n].GetExists()
	}
	return out, nil
}

// unchangedSinceHashed reports whether the open file still has the identity
// it had when NewArtifact hashed it (so its digest still holds).
func unchangedSinceHashed(f *os.File, a Artifact) bool {
	if a.hashedAs == (fileID{}) {
		return false
	}
	info, err := f.Stat()
	return err == nil && idOf(info) == a.hashedAs
}
