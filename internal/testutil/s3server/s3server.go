// Package s3server runs a real S3 server for tests: versitygw with its
// posix backend, listening on a loopback port the test picks, storing
// objects as plain files under a temporary directory. It enforces the rules
// in-process fakes skip (5 MiB minimum parts, checksums, signatures,
// conditional writes), and it can be killed and restarted mid-test.
//
// It must never listen beyond 127.0.0.1 or outlive the test that started it.
package s3server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/sparkenv/sparkenv/internal/testutil"
)

// Server is one running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string // created by Start
	// Dir is the posix backend's root: object key k of bucket b is the
	// file Dir/b/k, which tests may read to check bytes independently.
	Dir string
	// CAFile is the PEM certificate a client must trust to reach a server
	// started with StartTLS ("" for plain HTTP). Point AWS_CA_BUNDLE at it.
	CAFile string

	t       testing.TB
	bin     string
	addr    string
	sidecar string // metadata directory when Dir has no user xattrs
	keyFile string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// Start runs versitygw on a free loopback port with a fresh directory and
// one bucket, and stops it when the test ends. It skips the test when
// versitygw is not installed (outside CI).
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartTLS is Start with HTTPS, on a certificate for 127.0.0.1 made for
// this server alone (see CAFile): the path real stores take, where the SDK
// signs and checksums requests differently than over plain HTTP.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, useTLS bool) *Server {
	t.Helper()
	bin := testutil.Tool(t, "versitygw")
	base := t.TempDir()
	s := &Server{
		AccessKey: "sparkenvroot",
		SecretKey: randomHex(t, 20),
		Region:    "us-east-1",
		Bucket:    "sparkenv-test",
		Dir:       filepath.Join(base, "root"),
		t:         t,
		bin:       bin,
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if !hasUserXattr(s.Dir) || os.Getenv("SPARKENV_S3SERVER_SIDECAR") == "1" {
		// The posix backend keeps metadata in user xattrs; on a file system
		// without them it can keep it in a side directory instead.
		s.sidecar = filepath.Join(base, "meta")
		if err := os.MkdirAll(s.sidecar, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	scheme := "http://"
	if useTLS {
		scheme = "https://"
		s.CAFile, s.keyFile = writeCert(t, base)
	}
	t.Cleanup(s.stop)

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s.addr = freeAddr(t)
		s.Endpoint = scheme + s.addr
		if lastErr = s.launch(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("s3server: %v", lastErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("s3server: create bucket %s: %v\n%s", s.Bucket, err, s.out.String())
	}
	return s
}

// Client returns an S3 client for the server, signed with its root
// credentials.
func (s *Server) Client() *s3.Client {
	var hc s3.HTTPClient
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			s.t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		hc = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		})
	}
	return s3.New(s3.Options{
		HTTPClient:                 hc,
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
}

// ObjectPath is where the backend stores key of the test bucket.
func (s *Server) ObjectPath(key string) string {
	return filepath.Join(s.Dir, s.Bucket, filepath.FromSlash(key))
}

// Kill stops the server abruptly (SIGKILL), as a crash or a network cut
// would, and waits until it is gone. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart kills the server if it runs and starts it again on the same port
// and directory: objects written before are still there.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	// The port was ours a moment ago; give the kernel a few tries.
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("s3server: restart: %v", err)
}

// launch starts the process on s.addr and waits until it accepts
// connections.
func (s *Server) launch() error {
	args := []string{"--port", s.addr, "--quiet"}
	if s.CAFile != "" {
		args = append(args, "--cert", s.CAFile, "--key", s.keyFile)
	}
	args = append(args, "posix")
	if s.sidecar != "" {
		args = append(args, "--sidecar", s.sidecar)
	}
	args = append(args, s.Dir)
	cmd := exec.Command(s.bin, args...)
	// Credentials go through the environment, never argv, so they do not
	// show in process listings.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("versitygw on %s exited at start: %s", s.addr, out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("versitygw on %s did not accept connections within 20s: %s", s.addr, out.String())
}

func (s *Server) stop() {
	s.Kill()
	if s.t.Failed() && s.out != nil && s.out.Len() > 0 {
		s.t.Logf("versitygw output:\n%s", s.out.String())
	}
}

// freeAddr asks the kernel for a free loopback port. Another process may
// take it before versitygw binds it; Start then tries another.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3server: no free port: %v", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// writeCert makes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t testing.TB, dir string) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sparkenv test S3"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func hasUserXattr(dir string) bool {
	if err := unix.Setxattr(dir, "user.sparkenv.probe", []byte("1"), 0); err != nil {
		return false
	}
	_ = unix.Removexattr(dir, "user.sparkenv.probe")
	return true
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// syncBuffer collects the server's output from its two pipes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}
