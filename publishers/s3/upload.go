package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"
)

// metaSHA256 is the user metadata key (x-amz-meta-sha256) holding the hex
// sha256 of the whole object: multipart objects have no whole-object
// sha256 checksum of their own, and many stores keep no checksums at all.
const metaSHA256 = "sha256"

type state int

const (
	absent  state = iota
	present       // same size and sha256
	differs       // something else is there (or nothing proves it is ours)
)

// head says whether j's object is already in place.
func (r *run) head(ctx context.Context, j *job) (state, string, error) {
	out, err := r.c.HeadObject(ctx, &s3api.HeadObjectInput{
		Bucket:       aws.String(r.s.Bucket),
		Key:          aws.String(j.key),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		if isNotFound(err) {
			return absent, "", nil
		}
		if statusOf(err) == http.StatusForbidden {
			err = r.diagnose(ctx, j, err)
		}
		return 0, "", explain(err, r.s)
	}
	if n := aws.ToInt64(out.ContentLength); n != j.size {
		return differs, fmt.Sprintf("size %d, want %d", n, j.size), nil
	}
	if m := out.Metadata[metaSHA256]; m != "" {
		if strings.EqualFold(m, j.sha) {
			return present, "", nil
		}
		return differs, fmt.Sprintf("sha256 %s, want %s", m, j.sha), nil
	}
	// A whole-object checksum (single PUT with SHA256) is as good as our
	// metadata; a composite one ("...-N") of a multipart upload is not.
	if cs := aws.ToString(out.ChecksumSHA256); cs != "" && out.ChecksumType != types.ChecksumTypeComposite && !strings.Contains(cs, "-") {
		if raw, err := base64.StdEncoding.DecodeString(cs); err == nil && len(raw) == sha256.Size {
			got := hex.EncodeToString(raw)
			if got == j.sha {
				return present, "", nil
			}
			return differs, fmt.Sprintf("sha256 %s, want %s", got, j.sha), nil
		}
	}
	if !j.immutable {
		return differs, "no sha256 metadata", nil // rewriting costs no more than reading
	}
	// Nothing to compare on an immutable key (an object another tool put
	// there): read it back rather than refuse it. Such an object is never
	// rewritten, so every publish reads it again.
	got, err := r.remoteSHA(ctx, j)
	if err != nil {
		return 0, "", explain(err, r.s)
	}
	if got == j.sha {
		return present, "", nil
	}
	return differs, fmt.Sprintf("sha256 %s (read back, no sha256 metadata), want %s", got, j.sha), nil
}

func (r *run) remoteSHA(ctx context.Context, j *job) (string, error) {
	out, err := r.c.GetObject(ctx, &s3api.GetObjectInput{Bucket: aws.String(r.s.Bucket), Key: aws.String(j.key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, out.Body); err != nil {
		return "", fmt.Errorf("read back %s: %w", j.key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// diagnose asks again with a GET when a HEAD was refused: a HEAD answer has
// no body, so it cannot say whether the key ID is unknown, the signature is
// wrong or a permission is missing, and those need different fixes.
func (r *run) diagnose(ctx context.Context, j *job, headErr error) error {
	out, err := r.c.GetObject(ctx, &s3api.GetObjectInput{
		Bucket: aws.String(r.s.Bucket), Key: aws.String(j.key), Range: aws.String("bytes=0-0"),
	})
	if err == nil {
		out.Body.Close()
		return headErr
	}
	if codeOf(err) == "" || statusOf(err) == http.StatusNotFound {
		return headErr
	}
	return err
}

// put uploads j in one request or in parts.
func (r *run) put(ctx context.Context, j *job) error {
	if j.source == "" {
		return r.single(ctx, j, bytes.NewReader(j.body), sha256.Sum256(j.body))
	}
	f, err := os.Open(j.source)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.Size() != j.size {
		return fmt.Errorf("%s is %d bytes, the manifest says %d: the artifact changed after it was built", j.source, info.Size(), j.size)
	}
	if j.size > r.s.threshold {
		return r.multipart(ctx, j, f)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, j.size)); err != nil {
		return fmt.Errorf("read %s: %w", j.source, err)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if got := hex.EncodeToString(sum[:]); got != j.sha {
		return fmt.Errorf("%s has sha256 %s, the manifest says %s: the artifact changed after it was built", j.source, got, j.sha)
	}
	return r.single(ctx, j, io.NewSectionReader(f, 0, j.size), sum)
}

// conditional reports whether a write of j must not replace an object: the
// store then refuses it with 412 if the key appeared since the HEAD.
func (r *run) conditional(j *job) *string {
	if j.immutable && !r.unconditional.Load() {
		return aws.String("*")
	}
	return nil
}

func (r *run) single(ctx context.Context, j *job, body io.ReadSeeker, sum [sha256.Size]byte) error {
	in := &s3api.PutObjectInput{
		Bucket:            aws.String(r.s.Bucket),
		Key:               aws.String(j.key),
		Body:              body,
		ContentLength:     aws.Int64(j.size),
		ContentType:       aws.String(contentType(j.key)),
		CacheControl:      aws.String(cacheControl(j)),
		Metadata:          map[string]string{metaSHA256: j.sha},
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		IfNoneMatch:       r.conditional(j),
	}
	_, err := r.c.PutObject(ctx, in, withPayloadHash(sum[:]))
	if err != nil && in.IfNoneMatch != nil && isNotImplemented(err) {
		r.unconditional.Store(true)
		in.IfNoneMatch = nil
		if _, serr := body.Seek(0, io.SeekStart); serr != nil {
			return serr
		}
		_, err = r.c.PutObject(ctx, in, withPayloadHash(sum[:]))
	}
	return err
}

type part struct {
	num      int32
	off, len int64
	sum      [sha256.Size]byte
}

// multipart uploads f in parts, r.s.conc at a time. A single reader hashes
// each part (its checksum and signature) and the whole file (checked
// against the manifest before the upload is completed); the workers send
// sections of the file, so memory stays flat whatever the part size. On
// any failure the upload is aborted, so the store keeps no orphan parts.
func (r *run) multipart(ctx context.Context, j *job, f *os.File) (err error) {
	partSize, count := partPlan(j.size, r.s.partSize)
	cr, err := r.c.CreateMultipartUpload(ctx, &s3api.CreateMultipartUploadInput{
		Bucket:            aws.String(r.s.Bucket),
		Key:               aws.String(j.key),
		ContentType:       aws.String(contentType(j.key)),
		CacheControl:      aws.String(cacheControl(j)),
		Metadata:          map[string]string{metaSHA256: j.sha},
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		return fmt.Errorf("start multipart upload: %w", err)
	}
	id := cr.UploadId
	defer func() {
		if err == nil {
			return
		}
		// The caller's context may be cancelled already; the abort must
		// still go out, but not hang on a dead server.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, aerr := r.c.AbortMultipartUpload(actx, &s3api.AbortMultipartUploadInput{
			Bucket: aws.String(r.s.Bucket), Key: aws.String(j.key), UploadId: id,
		}, func(o *s3api.Options) { o.RetryMaxAttempts = 2 })
		if aerr != nil {
			err = fmt.Errorf("%w (aborting upload %s failed too: %v; its parts stay until a lifecycle rule "+
				"AbortIncompleteMultipartUpload removes them)", err, aws.ToString(id), aerr)
		}
	}()

	parts := make([]types.CompletedPart, count)
	tasks := make(chan part)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(tasks)
		whole := sha256.New()
		for i := 0; i < count; i++ {
			p := part{num: int32(i + 1), off: int64(i) * partSize}
			p.len = min(partSize, j.size-p.off)
			h := sha256.New()
			if _, err := io.Copy(io.MultiWriter(h, whole), io.NewSectionReader(f, p.off, p.len)); err != nil {
				return fmt.Errorf("read %s: %w", j.source, err)
			}
			h.Sum(p.sum[:0])
			select {
			case tasks <- p:
			case <-gctx.Done():
				return context.Cause(gctx)
			}
		}
		if got := hex.EncodeToString(whole.Sum(nil)); got != j.sha {
			return fmt.Errorf("%s has sha256 %s, the manifest says %s: the artifact changed after it was built", j.source, got, j.sha)
		}
		return nil
	})
	var done atomic.Int64
	for w := 0; w < min(r.s.conc, count); w++ {
		g.Go(func() error {
			for p := range tasks {
				if gctx.Err() != nil {
					continue // drain: the producer stops on its own
				}
				out, err := r.c.UploadPart(gctx, &s3api.UploadPartInput{
					Bucket:            aws.String(r.s.Bucket),
					Key:               aws.String(j.key),
					UploadId:          id,
					PartNumber:        aws.Int32(p.num),
					Body:              io.NewSectionReader(f, p.off, p.len),
					ContentLength:     aws.Int64(p.len),
					ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
					ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(p.sum[:])),
				}, withPayloadHash(p.sum[:]))
				if err != nil {
					return fmt.Errorf("part %d of %d: %w", p.num, count, err)
				}
				cs := out.ChecksumSHA256
				if cs == nil {
					cs = aws.String(base64.StdEncoding.EncodeToString(p.sum[:]))
				}
				parts[p.num-1] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(p.num), ChecksumSHA256: cs}
				r.event(j, EventProgress, done.Add(p.len), nil)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	in := &s3api.CompleteMultipartUploadInput{
		Bucket:          aws.String(r.s.Bucket),
		Key:             aws.String(j.key),
		UploadId:        id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfNoneMatch:     r.conditional(j),
	}
	_, err = r.c.CompleteMultipartUpload(ctx, in)
	if err != nil && in.IfNoneMatch != nil && isNotImplemented(err) {
		r.unconditional.Store(true)
		in.IfNoneMatch = nil
		_, err = r.c.CompleteMultipartUpload(ctx, in)
	}
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return nil
}

// withPayloadHash hands the SDK the sha256 we computed anyway, so it does
// not read the body once more to sign it (SigV4 signs the payload's sha256).
func withPayloadHash(sum []byte) func(*s3api.Options) {
	h := hex.EncodeToString(sum)
	return func(o *s3api.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("sparkenvPayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, h), in)
				}), middleware.Before)
		})
	}
}

func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func codeOf(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	var nf *types.NotFound
	var nk *types.NoSuchKey
	return errors.As(err, &nf) || errors.As(err, &nk) || (statusOf(err) == http.StatusNotFound && codeOf(err) != "NoSuchBucket")
}

func isPreconditionFailed(err error) bool {
	return statusOf(err) == http.StatusPreconditionFailed || codeOf(err) == "PreconditionFailed"
}

func isNotImplemented(err error) bool {
	return statusOf(err) == http.StatusNotImplemented || codeOf(err) == "NotImplemented"
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
