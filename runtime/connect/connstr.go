package connect

import (
	"crypto/rand"
	"fmt"
	"math"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// DefaultPort is the Spark Connect port used when a connection string names
// none.
const DefaultPort = 15002

// DefaultMaxMessageSize is the gRPC message size limit, in bytes, used when
// a connection string has no grpc_max_message_size (the official clients'
// default).
const DefaultMaxMessageSize = 128 << 20

// The parameters a connection string defines; any other parameter is passed
// to the server as gRPC metadata.
const (
	paramToken          = "token"
	paramUseSSL         = "use_ssl"
	paramUserID         = "user_id"
	paramUserAgent      = "user_agent"
	paramSessionID      = "session_id"
	paramMaxMessageSize = "grpc_max_message_size"
)

// maxUserAgent bounds user_agent as the official clients do.
const maxUserAgent = 2048

// ConnString is a parsed Spark Connect connection string,
// sc://host:port/;param=value;param=value.
type ConnString struct {
	Host string // a DNS name, an IPv4 address, or an IPv6 address without brackets
	Port int

	// Token is sent as "authorization: Bearer <token>" on every call. As in
	// the official clients, a token turns TLS on; Dial's PlaintextToken
	// option sends it over a plaintext connection instead.
	Token string
	// UseSSL asks for TLS with the system's root certificates.
	UseSSL bool
	// UserID goes into every request's UserContext; with the session id it
	// names the server-side session.
	UserID string
	// UserAgent names the application acting for the user; it leads the
	// client_type sent with each request.
	UserAgent string
	// SessionID is a UUID; empty means "let Dial pick a random one".
	SessionID string
	// MaxMessageSize is grpc_max_message_size in bytes; 0 means
	// DefaultMaxMessageSize.
	MaxMessageSize int

	// Params holds every other parameter, sent as gRPC metadata on every
	// call. Keys are valid lowercase metadata keys.
	Params map[string]string
}

// ParseConnString parses a Spark Connect connection string. It follows
// Spark's sql/connect/docs/client-connection-string.md: the scheme is sc,
// the path is empty (a lone "/" before the parameters is allowed), the port
// defaults to 15002, parameter names are case-sensitive and values may be
// percent-encoded.
func ParseConnString(s string) (ConnString, error) {
	fail := func(format string, args ...any) (ConnString, error) {
		return ConnString{}, fmt.Errorf("connection string %q: %s", redact(s), fmt.Sprintf(format, args...))
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return fail("want sc://host:port/;param=value")
	}
	if scheme != "sc" {
		return fail("scheme is %q, want \"sc\"", scheme)
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		return fail("a connection string has no query or fragment (%q); pass options as ;name=value parameters", rest[i:])
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/;"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	var cs ConnString
	if err := cs.parseAuthority(authority); err != nil {
		return fail("%v", err)
	}
	var params string
	switch {
	case tail == "" || tail == "/":
	case strings.HasPrefix(tail, "/;"):
		params = tail[2:]
	case strings.HasPrefix(tail, ";"):
		return fail("parameters must follow a slash: sc://%s/;…", authority)
	default:
		path, _, _ := strings.Cut(tail, ";")
		return fail("path %q is not allowed: the path of a Spark Connect URL must be empty", path)
	}
	if err := cs.parseParams(params); err != nil {
		return fail("%v", err)
	}
	return cs, nil
}

func (cs *ConnString) parseAuthority(a string) error {
	if a == "" {
		return fmt.Errorf("no host")
	}
	if strings.Contains(a, "@") {
		return fmt.Errorf("user information before the host is not supported; use ;user_id= and ;token=")
	}
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.Index(a, "]")
		if end < 0 {
			return fmt.Errorf("unterminated IPv6 address %q", a)
		}
		host = a[1:end]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return fmt.Errorf("%q is not an IPv6 address", host)
		}
		switch after := a[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
			if port == "" {
				return fmt.Errorf("empty port after %q", a[:end+1])
			}
		default:
			return fmt.Errorf("unexpected %q after the IPv6 address", after)
		}
	} else {
		if strings.Count(a, ":") > 1 {
			return fmt.Errorf("host %q does not match host:port (write IPv6 addresses in brackets)", a)
		}
		var hasPort bool
		host, port, hasPort = strings.Cut(a, ":")
		if hasPort && port == "" {
			return fmt.Errorf("empty port after %q", host)
		}
		if err := checkHostname(host); err != nil {
			return err
		}
	}
	cs.Host = host
	cs.Port = DefaultPort
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		cs.Port = n
	}
	return nil
}

func checkHostname(h string) error {
	if h == "" {
		return fmt.Errorf("no host")
	}
	if len(h) > 253 {
		return fmt.Errorf("host name is longer than 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("host %q has an empty label", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("host %q contains %q; a host is a DNS name or an IP address", h, r)
			}
		}
	}
	return nil
}

func (cs *ConnString) parseParams(s string) error {
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue // tolerated, as the JVM client does
		}
		key, raw, ok := strings.Cut(kv, "=")
		if !ok || key == "" || strings.Contains(raw, "=") {
			return fmt.Errorf("parameter %q is not name=value", kv)
		}
		if seen[key] {
			return fmt.Errorf("parameter %q is given twice", key)
		}
		seen[key] = true
		value, err := url.PathUnescape(raw)
		if err != nil {
			return fmt.Errorf("parameter %s: bad percent-encoding in %q", key, raw)
		}
		switch key {
		case paramToken:
			if err := checkHeaderValue(value); err != nil {
				return fmt.Errorf("token: %w", err)
			}
			cs.Token = value
		case paramUseSSL:
			switch strings.ToLower(value) {
			case "true":
				cs.UseSSL = true
			case "false":
				cs.UseSSL = false
			default:
				return fmt.Errorf("use_ssl is %q, want true or false", value)
			}
		case paramUserID:
			cs.UserID = value
		case paramUserAgent:
			if len(value) > maxUserAgent {
				return fmt.Errorf("user_agent is longer than %d bytes", maxUserAgent)
			}
			if err := checkHeaderValue(value); err != nil {
				return fmt.Errorf("user_agent: %w", err)
			}
			cs.UserAgent = value
		case paramSessionID:
			if !IsUUID(value) {
				return fmt.Errorf("session_id %q is not a UUID (like 550e8400-e29b-41d4-a716-446655440000)", value)
			}
			cs.SessionID = value
		case paramMaxMessageSize:
			n, err := strconv.Atoi(value)
			if err != nil || n <= 0 || n > math.MaxInt32 || value[0] == '+' {
				return fmt.Errorf("grpc_max_message_size %q is not a positive number of bytes", value)
			}
			cs.MaxMessageSize = n
		default:
			if err := checkMetadataKey(key); err != nil {
				return err
			}
			if err := checkHeaderValue(value); err != nil {
				return fmt.Errorf("parameter %s: %w", key, err)
			}
			if cs.Params == nil {
				cs.Params = map[string]string{}
			}
			cs.Params[key] = value
		}
	}
	return nil
}

// checkMetadataKey accepts what gRPC accepts as a metadata key that is not
// reserved and carries text.
func checkMetadataKey(k string) error {
	for _, r := range k {
		if r >= 'A' && r <= 'Z' {
			return fmt.Errorf("unknown parameter %q: parameter names are case-sensitive, and unknown ones are sent as gRPC metadata, whose keys are lowercase", k)
		}
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("unknown parameter %q: only a-z, 0-9, '-', '_' and '.' may name a parameter sent as gRPC metadata", k)
		}
	}
	if strings.HasPrefix(k, "grpc-") || strings.HasSuffix(k, "-bin") || k == "authorization" || k == "user-agent" || k == "content-type" || k == "te" {
		return fmt.Errorf("parameter %q would set a reserved gRPC header", k)
	}
	return nil
}

func checkHeaderValue(v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("value holds byte 0x%02x; only printable ASCII can travel in a gRPC header", v[i])
		}
	}
	return nil
}

// IsUUID reports whether s is a UUID in its textual form
// (8-4-4-4-12 hexadecimal digits, either case).
func IsUUID(s string) bool {
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

// NewSessionID returns a random (version 4) UUID.
func NewSessionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Addr is the host:port to dial.
func (cs ConnString) Addr() string {
	return net.JoinHostPort(cs.Host, strconv.Itoa(cs.Port))
}

// MaxMessage is the effective gRPC message size limit.
func (cs ConnString) MaxMessage() int {
	if cs.MaxMessageSize > 0 {
		return cs.MaxMessageSize
	}
	return DefaultMaxMessageSize
}

// Secure reports whether the connection uses TLS: use_ssl=true or a token.
func (cs ConnString) Secure() bool { return cs.UseSSL || cs.Token != "" }

// String renders the connection string back, parameters in a fixed order
// (the defined ones first, then the others sorted), values percent-encoded
// where the official parsers need it. Parsing the result gives cs again.
func (cs ConnString) String() string { return cs.render(false) }

// Redacted is String with the token and every metadata value replaced by
// "redacted", for logs and error messages.
func (cs ConnString) Redacted() string { return cs.render(true) }

func (cs ConnString) render(hide bool) string {
	var b strings.Builder
	b.WriteString("sc://")
	host := cs.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	b.WriteString(host)
	port := cs.Port
	if port == 0 {
		port = DefaultPort
	}
	fmt.Fprintf(&b, ":%d/", port)
	add := func(k, v string) {
		b.WriteString(";")
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(escapeParam(v))
	}
	if cs.UserID != "" {
		add(paramUserID, cs.UserID)
	}
	if cs.SessionID != "" {
		add(paramSessionID, cs.SessionID)
	}
	if cs.Token != "" {
		if hide {
			add(paramToken, "redacted")
		} else {
			add(paramToken, cs.Token)
		}
	}
	if cs.UseSSL {
		add(paramUseSSL, "true")
	}
	if cs.UserAgent != "" {
		add(paramUserAgent, cs.UserAgent)
	}
	if cs.MaxMessageSize > 0 {
		add(paramMaxMessageSize, strconv.Itoa(cs.MaxMessageSize))
	}
	keys := make([]string, 0, len(cs.Params))
	for k := range cs.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if hide {
			add(k, "redacted")
		} else {
			add(k, cs.Params[k])
		}
	}
	return b.String()
}

// escapeParam percent-encodes all but unreserved characters: ';' and '='
// separate parameters, and Python's URL parser looks for parameters after
// the last '/', so a raw slash in a value would break the official client.
func escapeParam(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// redact hides the values of a raw connection string's parameters in error
// messages: a token must not end up in a log because the string was
// malformed.
func redact(s string) string {
	i := strings.Index(s, ";")
	if i < 0 {
		return s
	}
	parts := strings.Split(s[i+1:], ";")
	for j, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok && k != paramUserID && k != paramSessionID && k != paramUseSSL {
			parts[j] = k + "=…"
		}
	}
	return s[:i+1] + strings.Join(parts, ";")
}
