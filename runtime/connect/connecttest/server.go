// Package connecttest runs a Spark Connect artifact server in-process, for
// tests: the AddArtifacts and ArtifactStatus RPCs behave as Spark's own
// server does (SparkConnectAddArtifactsHandler and the session artifact
// manager, in their 3.5 and 4.x flavours), artifacts land in a directory laid
// out like a session's, archives are unpacked as executors unpack them, and
// hooks inject the faults a real network and server produce. It listens on
// 127.0.0.1 only and must never be used as a production server.
package connecttest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/sparkenv/sparkenv/runtime/connect/internal/pb"
)

// Mode selects which Spark release the server imitates.
type Mode int

const (
	// Mode35 is Spark 3.5: any second add of a name fails the stream with
	// UNKNOWN and no message (the artifacts before it stay committed, the
	// ones after are dropped); every handler error is UNKNOWN without a
	// message; responses carry no session ids.
	Mode35 Mode = 35
	// Mode40 is Spark 4.x: a second add with identical bytes is accepted,
	// with different bytes it fails with ALREADY_EXISTS after the stream's
	// other artifacts are committed; other handler errors are INTERNAL with
	// the error class in the message; responses carry session_id and
	// server_side_session_id, and a client_observed_server_side_session_id
	// that no longer matches is refused.
	Mode40 Mode = 40
)

func (m Mode) String() string {
	switch m {
	case Mode35:
		return "3.5"
	case Mode40:
		return "4.0"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config configures a Server.
type Config struct {
	Mode Mode // default Mode40
	// Root is the artifact root; session directories are
	// Root/<user>/<session id>. Default: a temporary directory.
	Root string
	// Token, when set, must come with every call as
	// "authorization: Bearer <Token>" (Spark 4's pre-shared token).
	Token string
	// TLS, when set, makes the server speak TLS only.
	TLS *tls.Config
}

// Server is a running test server.
type Server struct {
	Mode Mode
	Root string
	// Addr is the 127.0.0.1:port the server listens on.
	Addr string

	grpc    *grpc.Server
	lis     *listener
	token   string
	tempDir string // removed by Close

	mu       sync.Mutex
	sessions map[sessionKey]*session
	streams  []*StreamLog
	statuses int
	statusMD metadata.MD
	unpack   []error
	// fault injection
	refuse      int
	refused     int
	dropAfter   int
	dropStreams int
	corruptK    int
	corruptN    int
}

type sessionKey struct{ user, id string }

type session struct {
	serverID string
	cache    map[string]bool
	names    map[string]bool
}

// Request is what the server saw of one AddArtifacts message.
type Request struct {
	Kind       string   // "batch", "begin_chunk", "chunk" or "empty"
	Names      []string // the batch's artifacts, or the begin_chunk's name
	NumChunks  int64    // begin_chunk only
	TotalBytes int64    // begin_chunk only
	DataBytes  int      // artifact bytes carried
	SessionID  string
	UserID     string
	UserName   string
	ClientType string
	// Observed is client_observed_server_side_session_id, if sent.
	Observed *string
}

// Summary is one entry of an AddArtifacts response.
type Summary struct {
	Name  string
	CRCOK bool
}

// StreamLog records one AddArtifacts stream.
type StreamLog struct {
	Metadata  metadata.MD
	Requests  []Request
	Summaries []Summary
	// Err is the status the stream ended with (nil on success); Cause is
	// the server's own account of it, which Mode35 does not send.
	Err   error
	Cause string
}

// New starts a server on 127.0.0.1 with a free port.
func New(cfg Config) (*Server, error) {
	if cfg.Mode == 0 {
		cfg.Mode = Mode40
	}
	if cfg.Mode != Mode35 && cfg.Mode != Mode40 {
		return nil, fmt.Errorf("connecttest: unknown mode %d", cfg.Mode)
	}
	root, temp := cfg.Root, ""
	if root == "" {
		d, err := os.MkdirTemp("", "connecttest-")
		if err != nil {
			return nil, err
		}
		root, temp = d, d
	}
	if err := os.MkdirAll(filepath.Join(root, ".staging"), 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("connecttest: listen: %w", err)
	}
	s := &Server{Mode: cfg.Mode, Root: root, Addr: l.Addr().String(), token: cfg.Token, tempDir: temp, sessions: map[sessionKey]*session{}}
	s.lis = &listener{Listener: l, s: s, conns: map[string]net.Conn{}}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(128 << 20),
		grpc.ForceServerCodecV2(pb.Codec{}),
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	pb.RegisterSparkConnectServiceServer(s.grpc, &service{s: s})
	go s.grpc.Serve(s.lis)
	return s, nil
}

// Start is New for tests, with the root in t.TempDir() unless cfg names
// one: it fails t on error and stops the server when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server at once, breaking open streams, and removes the
// root if New created it.
func (s *Server) Close() {
	s.grpc.Stop()
	if s.tempDir != "" {
		os.RemoveAll(s.tempDir)
	}
}

// URL is a connection string for the server with the given parameters
// (e.g. "user_id=alice", "session_id=…").
func (s *Server) URL(params ...string) string {
	u := "sc://" + s.Addr + "/"
	for _, p := range params {
		u += ";" + p
	}
	return u
}

// SessionDir is where the session's artifacts live: files under their names
// (archives without the alias), archives unpacked into <alias>, and files
// and pyfiles also at <file name>, as executors fetch them into the working
// directory of the session's Python workers.
func (s *Server) SessionDir(user, sessionID string) string {
	return filepath.Join(s.Root, userDir(user), sessionID)
}

var safeUser = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// userDir keeps user ids that are not plain names from steering paths.
func userDir(user string) string {
	if safeUser.MatchString(user) {
		return user
	}
	sum := sha256.Sum256([]byte(user))
	return "u-" + hex.EncodeToString(sum[:8])
}

// Names lists the artifact names committed to a session (cache/ ones too),
// sorted.
func (s *Server) Names(user, sessionID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if ss := s.sessions[sessionKey{user, sessionID}]; ss != nil {
		for n := range ss.names {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// ServerSideSessionID is the id Mode40 reports for a session ("" if none).
func (s *Server) ServerSideSessionID(user, sessionID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.sessions[sessionKey{user, sessionID}]; ss != nil {
		return ss.serverID
	}
	return ""
}

// Streams returns the log of every AddArtifacts stream so far.
func (s *Server) Streams() []StreamLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StreamLog, len(s.streams))
	for i, l := range s.streams {
		out[i] = *l
		out[i].Requests = append([]Request(nil), l.Requests...)
		out[i].Summaries = append([]Summary(nil), l.Summaries...)
	}
	return out
}

// StatusCalls counts ArtifactStatus calls.
func (s *Server) StatusCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statuses
}

// LastStatusMetadata is the metadata of the last ArtifactStatus call.
func (s *Server) LastStatusMetadata() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusMD.Copy()
}

// UnpackErrors lists archives that could not be unpacked. Like Spark, the
// server still accepts them: unpacking happens on executors, later.
func (s *Server) UnpackErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.unpack...)
}

// RefuseConnections closes the next n connections as soon as they are
// accepted, as a server that is not up yet would (clients see UNAVAILABLE).
func (s *Server) RefuseConnections(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = n
}

// RefusedConnections counts the connections refused so far.
func (s *Server) RefusedConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// DropStreamAfter makes the next streams AddArtifacts streams lose their
// connection after messages messages have arrived, as a network failure
// would; nothing of such a stream is committed.
func (s *Server) DropStreamAfter(messages, streams int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAfter, s.dropStreams = messages, streams
}

// CorruptChunk flips a byte of the k-th artifact chunk (counting from 0, in
// arrival order: batch entries, initial chunks and chunks alike) of the next
// streams AddArtifacts streams, before the CRC check; streams < 0 means
// every stream from now on.
func (s *Server) CorruptChunk(k, streams int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corruptK, s.corruptN = k, streams
}

// RestartSession forgets a session and its artifacts, as a server restart
// or a session release does; Mode40 gives the session a new server-side id.
func (s *Server) RestartSession(user, sessionID string) error {
	s.mu.Lock()
	delete(s.sessions, sessionKey{user, sessionID})
	s.mu.Unlock()
	return os.RemoveAll(s.SessionDir(user, sessionID))
}

// getSession returns the session, creating it, and checks the server-side
// id the client says it saw.
func (s *Server) getSession(user, id string, observed *string) (*session, error) {
	if !isUUID(id) {
		return nil, &handlerError{class: "INVALID_HANDLE.FORMAT", msg: fmt.Sprintf("The handle %q is invalid: a session id must be a UUID like 00112233-4455-6677-8899-aabbccddeeff.", id)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey{user, id}
	ss := s.sessions[k]
	if ss == nil {
		ss = &session{serverID: newUUID(), cache: map[string]bool{}, names: map[string]bool{}}
		s.sessions[k] = ss
	}
	if s.Mode == Mode40 && observed != nil && *observed != ss.serverID {
		return nil, &handlerError{class: "INVALID_HANDLE.SESSION_CHANGED", msg: fmt.Sprintf("The handle %s is invalid: the existing Spark server-side session (%s) differs from the one the client saw (%s).", id, ss.serverID, *observed)}
	}
	return ss, nil
}

// handlerError is an error of the handler, turned into a status per Mode.
type handlerError struct {
	class string // Spark error class, "" for plain exceptions
	msg   string
	code  codes.Code
}

func (e *handlerError) Error() string {
	if e.class == "" {
		return e.msg
	}
	return "[" + e.class + "] " + e.msg
}

// toStatus renders a handler error the way each Spark release reports it.
func (s *Server) toStatus(err error) error {
	if _, ok := status.FromError(err); ok && !errors.As(err, new(*handlerError)) {
		return err
	}
	if s.Mode == Mode35 {
		// 3.5 lets the exception escape the gRPC listener; grpc-java then
		// closes the call with UNKNOWN and no description.
		return status.Error(codes.Unknown, "")
	}
	var he *handlerError
	if errors.As(err, &he) && he.code != codes.OK {
		return status.Error(he.code, he.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func (s *Server) checkToken(ctx context.Context) error {
	if s.token == "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) == 1 && v[0] == "Bearer "+s.token {
		return nil
	}
	return status.Error(codes.Unauthenticated, "missing or wrong bearer token")
}

func (s *Server) unaryAuth(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.checkToken(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.checkToken(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}

// dropConn closes the connection a stream runs on.
func (s *Server) dropConn(ctx context.Context) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return
	}
	s.lis.mu.Lock()
	c := s.lis.conns[p.Addr.String()]
	s.lis.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// listener refuses connections on demand and remembers the others by
// remote address, so that a stream's connection can be dropped.
type listener struct {
	net.Listener
	s     *Server
	mu    sync.Mutex
	conns map[string]net.Conn
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.mu.Lock()
		refuse := l.s.refuse > 0
		if refuse {
			l.s.refuse--
			l.s.refused++
		}
		l.s.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		l.mu.Lock()
		l.conns[c.RemoteAddr().String()] = c
		l.mu.Unlock()
		return c, nil
	}
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func newUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
