package connect

import (
	"context"
	"crypto/tls"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/sparkenv/sparkenv/runtime/connect/internal/pb"
)

// Session names a server-side Spark Connect session: artifacts only help
// queries made with the same user id and session id.
type Session struct {
	ID     string // a UUID
	UserID string
	// UserName goes into UserContext.user_name; empty means UserID.
	UserName string
}

// Client talks to one Spark Connect endpoint. It is safe for concurrent use.
type Client struct {
	conn *grpc.ClientConn
	stub pb.SparkConnectServiceClient
	cs   ConnString
	o    options

	mu sync.Mutex
	// serverSessions remembers, per session, the server-side session id a
	// Spark 4.x server reported, to notice a server that lost the session
	// (and the artifacts pushed to it) in between two calls.
	serverSessions map[sessionKey]string
}

type sessionKey struct{ user, id string }

// RetryPolicy says how often and how patiently Push retries.
type RetryPolicy struct {
	// Attempts is the number of streams Push may open for an artifact
	// (the first try included).
	Attempts int
	// Initial is the wait before the first retry; it doubles up to Max.
	Initial, Max time.Duration
}

// DefaultRetry is the policy used without WithRetry: five tries within about
// eight seconds of waiting, which rides out a server restart or a dropped
// connection without hiding a server that is really down.
var DefaultRetry = RetryPolicy{Attempts: 5, Initial: 500 * time.Millisecond, Max: 4 * time.Second}

// Progress is told, after each message sent, how many bytes of an artifact
// have been sent in the current attempt, and the artifact's size.
type Progress func(name string, sent, total int64)

type options struct {
	plaintextToken bool
	tlsConfig      *tls.Config
	dialOptions    []grpc.DialOption
	retry          RetryPolicy
	progress       Progress
	clientType     string
	sleep          func(context.Context, time.Duration) error
}

// An Option configures Dial.
type Option func(*options)

// PlaintextToken sends the connection string's token over a plaintext
// connection instead of turning TLS on. It exists for servers on loopback
// or behind a local proxy; anywhere else the token would travel in clear.
func PlaintextToken() Option { return func(o *options) { o.plaintextToken = true } }

// WithTLSConfig sets the TLS configuration used when the connection is
// secure (use_ssl=true or a token); the default trusts the system roots.
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tlsConfig = c } }

// WithDialOptions adds gRPC dial options (interceptors, keepalive, …).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, opts...) }
}

// WithRetry replaces DefaultRetry.
func WithRetry(p RetryPolicy) Option { return func(o *options) { o.retry = p } }

// WithProgress reports the bytes sent per artifact.
func WithProgress(p Progress) Option { return func(o *options) { o.progress = p } }

// WithClientType sets the client_type sent with each request (default
// "sparkenv/<module version>"); the connection string's user_agent is put
// before it.
func WithClientType(s string) Option { return func(o *options) { o.clientType = s } }

// Dial prepares a client for the endpoint of cs. Like grpc.NewClient it does
// not connect yet: the first call does, so a server that is not up yet is
// retried by Push. When cs has no session id a random one is chosen, and
// Client.ConnString shows it.
func Dial(ctx context.Context, cs ConnString, opts ...Option) (*Client, error) {
	_ = ctx // connecting is lazy; ctx bounds nothing yet but keeps the signature stable
	o := options{retry: DefaultRetry, clientType: "sparkenv/" + moduleVersion(), sleep: sleepCtx}
	for _, opt := range opts {
		opt(&o)
	}
	if o.retry.Attempts < 1 {
		o.retry.Attempts = 1
	}
	if cs.Host == "" {
		return nil, fmt.Errorf("spark connect: connection string has no host")
	}
	if cs.Port == 0 {
		cs.Port = DefaultPort
	}
	if cs.SessionID == "" {
		cs.SessionID = NewSessionID()
	}
	if cs.UserAgent != "" {
		o.clientType = cs.UserAgent + " " + o.clientType
	}

	secure := cs.UseSSL || (cs.Token != "" && !o.plaintextToken)
	var dialOpts []grpc.DialOption
	if secure {
		tc := o.tlsConfig
		if tc == nil {
			tc = &tls.Config{ServerName: cs.Host, MinVersion: tls.VersionTLS12}
		}
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if cs.Token != "" {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearer{token: cs.Token, secure: secure}))
	}
	if len(cs.Params) > 0 {
		md := metadata.New(cs.Params)
		dialOpts = append(dialOpts,
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return invoker(withMetadata(ctx, md), method, req, reply, cc, opts...)
			}),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(withMetadata(ctx, md), desc, cc, method, opts...)
			}))
	}
	dialOpts = append(dialOpts,
		grpc.WithUserAgent(o.clientType),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cs.MaxMessage()), grpc.MaxCallSendMsgSize(cs.MaxMessage())))
	dialOpts = append(dialOpts, o.dialOptions...)

	conn, err := grpc.NewClient("dns:///"+cs.Addr(), dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("spark connect %s: %w", cs.Redacted(), err)
	}
	return &Client{conn: conn, stub: pb.NewSparkConnectServiceClient(conn), cs: cs, o: o, serverSessions: map[sessionKey]string{}}, nil
}

func withMetadata(ctx context.Context, md metadata.MD) context.Context {
	for k, vs := range md {
		for _, v := range vs {
			ctx = metadata.AppendToOutgoingContext(ctx, k, v)
		}
	}
	return ctx
}

// bearer sends the token. Unlike grpc-go's oauth credentials it can be told
// that a plaintext connection is acceptable (PlaintextToken).
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// ConnString is the connection string in use, with the session id Dial
// chose if the original had none.
func (c *Client) ConnString() ConnString { return c.cs }

// Session is the session the connection string names.
func (c *Client) Session() Session {
	return Session{ID: c.cs.SessionID, UserID: c.cs.UserID}
}

// Conn is the underlying gRPC connection, for callers that speak the rest of
// the Spark Connect protocol with their own generated code.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

func (c *Client) userContext(s Session) *pb.UserContext {
	name := s.UserName
	if name == "" {
		name = s.UserID
	}
	return &pb.UserContext{UserId: s.UserID, UserName: name}
}

// resolve fills in the client's session where s leaves fields empty and
// checks the id.
func (c *Client) resolve(s Session) (Session, error) {
	if s.ID == "" {
		s.ID = c.cs.SessionID
		if s.UserID == "" {
			s.UserID = c.cs.UserID
		}
	}
	if !IsUUID(s.ID) {
		return s, fmt.Errorf("spark connect: session id %q is not a UUID", s.ID)
	}
	return s, nil
}

func (c *Client) observed(s Session) *string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.serverSessions[sessionKey{s.UserID, s.ID}]; ok {
		return &id
	}
	return nil
}

// checkSession compares the session ids of a response with what was asked
// and what was seen before. Spark 3.5 servers leave both empty.
func (c *Client) checkSession(s Session, sessionID, serverSide string) error {
	if sessionID != "" && !strings.EqualFold(sessionID, s.ID) {
		return fmt.Errorf("spark connect: server answered for session %s, asked for %s", sessionID, s.ID)
	}
	if serverSide == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := sessionKey{s.UserID, s.ID}
	if prev, ok := c.serverSessions[k]; ok && prev != serverSide {
		return fmt.Errorf("spark connect: session %s changed on the server (server-side id %s, before %s): it was restarted or released, and artifacts pushed earlier are gone", s.ID, serverSide, prev)
	}
	c.serverSessions[k] = serverSide
	return nil
}

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return "dev"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
