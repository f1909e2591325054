package s3server

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func put(t *testing.T, s *Server, key, body string) {
	t.Helper()
	_, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: strings.NewReader(body),
		Metadata: map[string]string{"sha256": "abc"},
	})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, s *Server, key string) (string, map[string]string) {
	t.Helper()
	out, err := s.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), out.Metadata
}

func TestStartPutGetRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	put(t, s, "a/b.txt", "hello")
	body, meta := get(t, s, "a/b.txt")
	if body != "hello" || meta["sha256"] != "abc" {
		t.Fatalf("got %q %v", body, meta)
	}
	// The backend keeps objects as plain files.
	if b, err := os.ReadFile(s.ObjectPath("a/b.txt")); err != nil || !bytes.Equal(b, []byte("hello")) {
		t.Fatalf("object file: %q, %v", b, err)
	}

	s.Kill()
	if _, err := s.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("a/b.txt")},
		func(o *s3.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Fatal("HEAD succeeded on a killed server")
	}
	s.Kill() // twice is harmless
	s.Restart()
	if body, _ := get(t, s, "a/b.txt"); body != "hello" {
		t.Fatalf("after restart: %q", body)
	}
}

func TestWrongSecretRefused(t *testing.T) {
	t.Parallel()
	s := Start(t)
	bad := &Server{Endpoint: s.Endpoint, Region: s.Region, AccessKey: s.AccessKey, SecretKey: "wrong" + s.SecretKey}
	_, err := bad.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String("x"), Body: strings.NewReader("x")})
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("err = %v, want SignatureDoesNotMatch", err)
	}
}

// The side-directory metadata mode is what runs where the temp directory
// has no user xattrs; force it here so it is exercised everywhere.
func TestSidecarMetadata(t *testing.T) {
	t.Setenv("SPARKENV_S3SERVER_SIDECAR", "1")
	s := Start(t)
	if s.sidecar == "" {
		t.Fatal("sidecar mode not selected")
	}
	put(t, s, "k", "v")
	if body, meta := get(t, s, "k"); body != "v" || meta["sha256"] != "abc" {
		t.Fatalf("got %q %v", body, meta)
	}
	if ents, err := os.ReadDir(s.sidecar); err != nil || len(ents) == 0 {
		t.Fatalf("sidecar directory %s is empty (%v): metadata went elsewhere", s.sidecar, err)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := StartTLS(t)
	if !strings.HasPrefix(s.Endpoint, "https://") || s.CAFile == "" {
		t.Fatalf("endpoint %s, CA %q", s.Endpoint, s.CAFile)
	}
	put(t, s, "tls/k", "secure")
	if body, _ := get(t, s, "tls/k"); body != "secure" {
		t.Fatalf("got %q", body)
	}
}
