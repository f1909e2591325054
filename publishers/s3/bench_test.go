package s3

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sparkenv/sparkenv/internal/testutil/s3server"
	"github.com/sparkenv/sparkenv/publishers"
)

// BenchmarkPublish1GB compares publishing 1000 MiB spread over 50 files
// (parallel files, parallel parts, checksums, HEAD checks) with a single
// PutObject of the same number of bytes, against a real server on
// loopback. It only runs with -bench (and never with -short): it writes
// 2 GB to the temporary directory.
func BenchmarkPublish1GB(b *testing.B) {
	if testing.Short() {
		b.Skip("writes 2 GB; not with -short")
	}
	srv := s3server.Start(b)
	const files, each = 50, 20 * mib
	src := b.TempDir()
	for i := range files {
		writeRandom(b, filepath.Join(src, fmt.Sprintf("part-%02d.bin", i)), each, uint64(i+100))
	}
	a := scanned(b, src, "target.bench.data", nil)
	one := filepath.Join(b.TempDir(), "one.bin")
	writeRandom(b, one, files*each, 7)

	clean := func(prefix string) {
		b.StopTimer()
		if err := os.RemoveAll(srv.ObjectPath(prefix)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}

	for _, v := range []struct {
		name string
		th   int
	}{{"publish-50-files", 0}, {"publish-50-files-no-multipart", 64}} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(files * each)
			p := New()
			p.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
			for i := 0; i < b.N; i++ {
				prefix := fmt.Sprintf("pub%d", i)
				rec, err := p.Publish(context.Background(), &publishers.Request{Address: "publish.s3.bench",
					Config: &Config{Bucket: srv.Bucket, Prefix: prefix, Endpoint: srv.Endpoint, PathStyle: true,
						MultipartThresholdMB: v.th},
					Artifacts: []publishers.Artifact{a}, Jobs: 4})
				if err != nil {
					b.Fatal(err)
				}
				if rec.Stats.Uploaded != files+1 {
					b.Fatalf("stats %+v", rec.Stats)
				}
				clean(prefix)
			}
		})
	}

	b.Run("single-putobject", func(b *testing.B) {
		b.SetBytes(files * each)
		c := srv.Client()
		for i := 0; i < b.N; i++ {
			f, err := os.Open(one)
			if err != nil {
				b.Fatal(err)
			}
			key := fmt.Sprintf("put%d/one.bin", i)
			_, err = c.PutObject(context.Background(), &s3api.PutObjectInput{Bucket: aws.String(srv.Bucket),
				Key: aws.String(key), Body: f, ContentLength: aws.Int64(files * each)})
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			clean(filepath.Dir(key))
		}
	})
}
