package s3read

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sparkenv/sparkenv/internal/testutil/s3server"
)

func TestReadAgainstRealServer(t *testing.T) {
	srv := s3server.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", srv.Region)
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	ctx := context.Background()
	body := []byte(`{"info":{"subdir":"noarch"},"packages":{}}`)
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket),
		Key: aws.String("chan/noarch/repodata.json"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	c := &Client{Endpoint: srv.Endpoint}
	rc, err := c.GetObject(ctx, srv.Bucket, "chan/noarch/repodata.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("got %q", got)
	}
	if etag, err := c.HeadETag(ctx, srv.Bucket, "chan/noarch/repodata.json"); err != nil || etag == "" {
		t.Fatalf("etag %q, %v", etag, err)
	}
	_, err = c.GetObject(ctx, srv.Bucket, "chan/linux-64/repodata.json")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "s3://"+srv.Bucket+"/chan/linux-64/repodata.json") {
		t.Fatalf("missing object: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	bad := &Client{Endpoint: srv.Endpoint}
	_, err = bad.GetObject(ctx, srv.Bucket, "chan/noarch/repodata.json")
	if err == nil || strings.Contains(err.Error(), "wrong-secret") || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("bad credentials: %v", err)
	}
}
