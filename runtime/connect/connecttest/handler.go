package connecttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sparkenv/sparkenv/runtime/connect/internal/pb"
)

type service struct {
	pb.UnimplementedSparkConnectServiceServer
	s *Server
}

// staged is an artifact rebuilt from the wire in the stream's staging
// directory, not yet part of the session.
type staged struct {
	name      string // as sent
	canonical string // name without the archive alias
	alias     string
	file      string // staging file
	out       *os.File
	crcOK     bool
	chunked   bool
	firstCRC  bool
	numChunks int64
	remaining int64
	total     int64
	processed int64
	closed    bool
}

// streamState is one AddArtifacts stream on the server.
type streamState struct {
	s        *Server
	log      *StreamLog
	dir      string // staging directory
	sess     *session
	user     string
	id       string
	pending  []*staged
	open     *staged // the chunked artifact being received
	chunkIdx int
	corrupt  int // chunk index to corrupt, -1 for none
}

func (v *service) AddArtifacts(stream pb.SparkConnectService_AddArtifactsServer) error {
	s := v.s
	md, _ := metadata.FromIncomingContext(stream.Context())
	log := &StreamLog{Metadata: md}
	s.mu.Lock()
	s.streams = append(s.streams, log)
	dropAfter := -1
	if s.dropStreams > 0 {
		s.dropStreams--
		dropAfter = s.dropAfter
	}
	corrupt := -1
	if s.corruptN != 0 {
		if s.corruptN > 0 {
			s.corruptN--
		}
		corrupt = s.corruptK
	}
	s.mu.Unlock()

	dir, err := os.MkdirTemp(filepath.Join(s.Root, ".staging"), "stream-")
	if err != nil {
		return v.finish(log, status.Error(codes.Internal, err.Error()), "")
	}
	st := &streamState{s: s, log: log, dir: dir, corrupt: corrupt}
	defer st.cleanup()

	n := 0
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			// The client went away or cancelled: nothing is committed.
			return v.finish(log, err, "stream broken before half-close: "+err.Error())
		}
		n++
		st.record(req)
		if n == dropAfter {
			s.dropConn(stream.Context())
			return v.finish(log, status.Error(codes.Unavailable, "connection dropped"), fmt.Sprintf("connection dropped after %d messages", n))
		}
		if err := st.handle(req); err != nil {
			return v.finish(log, s.toStatus(err), err.Error())
		}
	}
	resp, err := st.complete()
	if err != nil {
		return v.finish(log, s.toStatus(err), err.Error())
	}
	if err := stream.SendAndClose(resp); err != nil {
		return v.finish(log, err, err.Error())
	}
	return v.finish(log, nil, "")
}

func (v *service) finish(log *StreamLog, err error, cause string) error {
	v.s.mu.Lock()
	log.Err, log.Cause = err, cause
	v.s.mu.Unlock()
	return err
}

func (st *streamState) record(req *pb.AddArtifactsRequest) {
	r := Request{
		SessionID:  req.GetSessionId(),
		UserID:     req.GetUserContext().GetUserId(),
		UserName:   req.GetUserContext().GetUserName(),
		ClientType: req.GetClientType(),
		Observed:   req.ClientObservedServerSideSessionId,
	}
	switch p := req.GetPayload().(type) {
	case *pb.AddArtifactsRequest_Batch_:
		r.Kind = "batch"
		for _, a := range p.Batch.GetArtifacts() {
			r.Names = append(r.Names, a.GetName())
			r.DataBytes += len(a.GetData().GetData())
		}
	case *pb.AddArtifactsRequest_BeginChunk:
		r.Kind = "begin_chunk"
		r.Names = []string{p.BeginChunk.GetName()}
		r.NumChunks = p.BeginChunk.GetNumChunks()
		r.TotalBytes = p.BeginChunk.GetTotalBytes()
		r.DataBytes = len(p.BeginChunk.GetInitialChunk().GetData())
	case *pb.AddArtifactsRequest_Chunk:
		r.Kind = "chunk"
		r.DataBytes = len(p.Chunk.GetData())
	default:
		r.Kind = "empty"
	}
	st.s.mu.Lock()
	st.log.Requests = append(st.log.Requests, r)
	st.s.mu.Unlock()
}

// handle processes one message, as Spark's handler does in onNext.
func (st *streamState) handle(req *pb.AddArtifactsRequest) error {
	if st.sess == nil {
		// The first message picks the session; later ones are not checked
		// against it, as in Spark.
		ss, err := st.s.getSession(req.GetUserContext().GetUserId(), req.GetSessionId(), req.ClientObservedServerSideSessionId)
		if err != nil {
			return err
		}
		st.sess, st.user, st.id = ss, req.GetUserContext().GetUserId(), req.GetSessionId()
	}
	switch p := req.GetPayload().(type) {
	case *pb.AddArtifactsRequest_BeginChunk:
		if st.open != nil {
			return fmt.Errorf("requirement failed: begin_chunk for %s while chunked artifact %s is still open", p.BeginChunk.GetName(), st.open.name)
		}
		a, err := st.stage(p.BeginChunk.GetName())
		if err != nil {
			return err
		}
		a.chunked, a.firstCRC = true, true
		a.numChunks, a.remaining, a.total = p.BeginChunk.GetNumChunks(), p.BeginChunk.GetNumChunks(), p.BeginChunk.GetTotalBytes()
		st.open = a
		// Like Spark, the artifact stays open after its initial chunk even
		// when num_chunks is 1: only a chunk message can finish it.
		return st.write(a, p.BeginChunk.GetInitialChunk())
	case *pb.AddArtifactsRequest_Chunk:
		a := st.open
		if a == nil || a.remaining == 0 {
			return fmt.Errorf("requirement failed: chunk with no chunked artifact open")
		}
		if err := st.write(a, p.Chunk); err != nil {
			return err
		}
		if a.remaining == 0 {
			st.open = nil
			return a.close()
		}
		return nil
	case *pb.AddArtifactsRequest_Batch_:
		for _, sa := range p.Batch.GetArtifacts() {
			a, err := st.stage(sa.GetName())
			if err != nil {
				return err
			}
			if err := st.write(a, sa.GetData()); err != nil {
				return err
			}
			if err := a.close(); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("unsupported data transfer request: no payload")
	}
}

// stage creates the staging file of an artifact, refusing names that are
// absolute or leave the staging directory, and archive names with a second
// '#'.
func (st *streamState) stage(name string) (*staged, error) {
	a := &staged{name: name, canonical: name}
	if strings.HasPrefix(name, "archives/") {
		parts := strings.Split(name, "#")
		if len(parts) > 2 {
			return nil, fmt.Errorf("assertion failed: '#' in the path is not supported for adding an archive: %s", name)
		}
		a.canonical = parts[0]
		if len(parts) == 2 {
			a.alias = parts[1]
		}
	}
	if err := checkRelative(a.canonical); err != nil {
		return nil, &handlerError{class: "INVALID_ARTIFACT_PATH", msg: fmt.Sprintf("Artifact %q: %v.", name, err)}
	}
	a.file = filepath.Join(st.dir, filepath.FromSlash(a.canonical))
	if err := os.MkdirAll(filepath.Dir(a.file), 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(a.file); err == nil {
		// The same name twice in one stream: stage it aside; the commit
		// then meets the first one.
		f, err := os.CreateTemp(st.dir, "duplicate-artifact-*.tmp")
		if err != nil {
			return nil, err
		}
		f.Close()
		a.file = f.Name()
	}
	f, err := os.OpenFile(a.file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	a.out = f
	st.pending = append(st.pending, a)
	return a, nil
}

// checkRelative accepts a name that, joined to a directory, stays inside it.
func checkRelative(name string) error {
	if name == "" {
		return errors.New("the name is empty")
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) {
		return errors.New("the path is absolute")
	}
	clean := path.Clean(name)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return errors.New("the path leaves the session directory")
	}
	return nil
}

// write appends a chunk, checking its CRC (after the fault hook had its
// chance to corrupt it in flight).
func (st *streamState) write(a *staged, c *pb.AddArtifactsRequest_ArtifactChunk) error {
	if a.chunked && a.remaining == 0 {
		return fmt.Errorf("Excessive data chunks for artifact: %s, expected %d chunks in total. Processed %d bytes out of %d bytes.", a.name, a.numChunks, a.processed, a.total)
	}
	data := c.GetData()
	if st.chunkIdx == st.corrupt && len(data) > 0 {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 0xff
	}
	st.chunkIdx++
	if _, err := a.out.Write(data); err != nil {
		return err
	}
	ok := int64(crc32.ChecksumIEEE(data)) == c.GetCrc()
	if a.chunked {
		// The artifact's CRC holds only if every chunk's does.
		a.crcOK = ok && (a.crcOK || a.firstCRC)
		a.firstCRC = false
		a.processed += int64(len(data))
		a.remaining--
	} else {
		a.crcOK = ok
	}
	return nil
}

func (a *staged) close() error {
	if a.closed {
		return nil
	}
	if a.chunked && (a.remaining != 0 || a.processed != a.total) {
		return fmt.Errorf("Missing data chunks for artifact: %s. Expected %d chunks and received %d chunks. Processed %d bytes out of %d bytes.", a.name, a.numChunks, a.numChunks-a.remaining, a.processed, a.total)
	}
	a.closed = true
	return a.out.Close()
}

func (st *streamState) cleanup() {
	for _, a := range st.pending {
		if a.out != nil {
			a.out.Close()
		}
	}
	os.RemoveAll(st.dir)
}

// complete runs at half-close: every staged artifact whose CRC held is added
// to the session, in order, and the summaries are returned.
func (st *streamState) complete() (*pb.AddArtifactsResponse, error) {
	s := st.s
	if st.open != nil {
		a := st.open
		return nil, fmt.Errorf("Missing data chunks for artifact: %s. Expected %d chunks and received %d chunks. Processed %d bytes out of %d bytes.", a.name, a.numChunks, a.numChunks-a.remaining, a.processed, a.total)
	}
	resp := &pb.AddArtifactsResponse{}
	var exists []error
	for _, a := range st.pending {
		if a.crcOK {
			if err := st.add(a); err != nil {
				var he *handlerError
				if s.Mode == Mode40 && errors.As(err, &he) && he.code == codes.AlreadyExists {
					exists = append(exists, err)
				} else {
					return nil, err
				}
			}
		}
		resp.Artifacts = append(resp.Artifacts, &pb.AddArtifactsResponse_ArtifactSummary{Name: a.name, IsCrcSuccessful: a.crcOK})
	}
	if len(exists) > 0 {
		msgs := make([]string, len(exists))
		for i, e := range exists {
			msgs[i] = e.Error()
		}
		return nil, &handlerError{code: codes.AlreadyExists, msg: strings.Join(msgs, "; ")}
	}
	if s.Mode == Mode40 && st.sess != nil {
		resp.SessionId = st.id
		resp.ServerSideSessionId = st.sess.serverID
	}
	s.mu.Lock()
	for _, a := range resp.Artifacts {
		st.log.Summaries = append(st.log.Summaries, Summary{Name: a.GetName(), CRCOK: a.GetIsCrcSuccessful()})
	}
	s.mu.Unlock()
	return resp, nil
}

// add moves one staged artifact into the session directory, as the artifact
// manager does, then lays it out as executors would see it.
func (st *streamState) add(a *staged) error {
	s := st.s
	canonical := path.Clean(a.canonical)
	if strings.HasPrefix(canonical, "cache/") {
		s.mu.Lock()
		st.sess.cache[strings.TrimPrefix(canonical, "cache/")] = true
		st.sess.names[canonical] = true
		s.mu.Unlock()
		return nil
	}
	dir := s.SessionDir(st.user, st.id)
	target := filepath.Join(dir, filepath.FromSlash(canonical))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if !strings.HasPrefix(canonical, "classes/") {
		if _, err := os.Lstat(target); err == nil {
			if s.Mode == Mode35 {
				return fmt.Errorf("Duplicate Artifact: %s. Artifacts cannot be overwritten.", canonical)
			}
			same, err := sameContent(target, a.file)
			if err != nil {
				return err
			}
			if same {
				return nil // identical bytes: the add is idempotent
			}
			return &handlerError{class: "ARTIFACT_ALREADY_EXISTS", code: codes.AlreadyExists, msg: fmt.Sprintf("The artifact %s already exists. Please choose a different name for the new artifact because it cannot be overwritten.", canonical)}
		}
	}
	if err := os.Rename(a.file, target); err != nil {
		return err
	}
	s.mu.Lock()
	st.sess.names[a.name] = true
	s.mu.Unlock()
	if err := materialize(dir, canonical, a.alias, target); err != nil {
		s.mu.Lock()
		s.unpack = append(s.unpack, fmt.Errorf("%s: %w", a.name, err))
		s.mu.Unlock()
	}
	return nil
}

func sameContent(a, b string) (bool, error) {
	x, err := os.ReadFile(a)
	if err != nil {
		return false, err
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}

func (v *service) ArtifactStatus(ctx context.Context, req *pb.ArtifactStatusesRequest) (*pb.ArtifactStatusesResponse, error) {
	s := v.s
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	s.statuses++
	s.statusMD = md
	s.mu.Unlock()
	ss, err := s.getSession(req.GetUserContext().GetUserId(), req.GetSessionId(), req.ClientObservedServerSideSessionId)
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &pb.ArtifactStatusesResponse{Statuses: map[string]*pb.ArtifactStatusesResponse_ArtifactStatus{}}
	s.mu.Lock()
	for _, n := range req.GetNames() {
		exists := false
		if h, ok := strings.CutPrefix(n, "cache/"); ok {
			exists = ss.cache[h]
		}
		resp.Statuses[n] = &pb.ArtifactStatusesResponse_ArtifactStatus{Exists: exists}
	}
	s.mu.Unlock()
	if s.Mode == Mode40 {
		resp.SessionId = req.GetSessionId()
		resp.ServerSideSessionId = ss.serverID
	}
	return resp, nil
}
