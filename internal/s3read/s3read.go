// Package s3read reads objects of s3:// URLs for the conda engine (channel
// indexes and packages), with credentials from the standard AWS chain. A
// missing object is an error wrapping fs.ErrNotExist, which the channel
// fetcher treats as an absent file.
package s3read

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Client reads objects. Its S3 client is made on first use, so a build
// that never reads s3:// pays nothing for it.
type Client struct {
	// Endpoint, when set, is an S3-compatible store's URL (path-style
	// addressing is then used); otherwise AWS_ENDPOINT_URL_S3 /
	// AWS_ENDPOINT_URL or AWS itself.
	Endpoint string
	Region   string

	once sync.Once
	c    *s3.Client
	err  error
}

func (c *Client) client(ctx context.Context) (*s3.Client, error) {
	c.once.Do(func() {
		opts := []func(*config.LoadOptions) error{}
		if c.Region != "" {
			opts = append(opts, config.WithRegion(c.Region))
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			c.err = fmt.Errorf("load AWS configuration: %w", err)
			return
		}
		if cfg.Region == "" {
			cfg.Region = "us-east-1"
		}
		endpoint := c.Endpoint
		if endpoint == "" {
			endpoint = os.Getenv("SPARKENV_S3_ENDPOINT")
		}
		c.c = s3.NewFromConfig(cfg, func(o *s3.Options) {
			if endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
				o.UsePathStyle = true
			}
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		})
	})
	return c.c, c.err
}

// GetObject opens s3://bucket/key.
func (c *Client) GetObject(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	cl, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, explain(bucket, key, err)
	}
	return out.Body, nil
}

// HeadETag returns the object's ETag, for revalidating a cached index.
func (c *Client) HeadETag(ctx context.Context, bucket, key string) (string, error) {
	cl, err := c.client(ctx)
	if err != nil {
		return "", err
	}
	out, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", explain(bucket, key, err)
	}
	return aws.ToString(out.ETag), nil
}

func explain(bucket, key string, err error) error {
	url := "s3://" + bucket + "/" + key
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "404":
			return fmt.Errorf("%s: %w", url, fs.ErrNotExist)
		case "NoSuchBucket":
			return fmt.Errorf("%s: bucket %q does not exist", url, bucket)
		case "AccessDenied", "Forbidden", "403":
			return fmt.Errorf("%s: access denied: check the AWS credentials (environment, profile or role) and the bucket policy", url)
		case "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return fmt.Errorf("%s: %s: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile in use)", url, ae.ErrorCode())
		}
		return fmt.Errorf("%s: %s: %s", url, ae.ErrorCode(), strings.TrimSpace(ae.ErrorMessage()))
	}
	return fmt.Errorf("%s: %w", url, err)
}
