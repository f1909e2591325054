package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// hinted is an SDK error with a sentence saying what to do about it. The
// SDK's text stays (request IDs help a support ticket); it never carries
// credentials, and neither does the hint.
type hinted struct {
	err  error
	hint string
}

func (e *hinted) Error() string { return e.err.Error() + ": " + e.hint }
func (e *hinted) Unwrap() error { return e.err }

// explain attaches a hint to err when its cause is a common mistake.
func explain(err error, s *settings) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	if h := hintFor(err, s); h != "" {
		return &hinted{err: err, hint: h}
	}
	return err
}

func hintFor(err error, s *settings) string {
	where := "AWS"
	if s.Endpoint != "" {
		where = s.Endpoint
	}
	var se *v4.SigningError
	if errors.As(err, &se) {
		return "no usable AWS credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
			"AWS_PROFILE or the block's profile, or run where an IAM role is available"
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch code {
	case "InvalidAccessKeyId", "XAdminUserNotFound":
		return "the access key ID is unknown to " + where + "; check AWS_ACCESS_KEY_ID or the profile's aws_access_key_id"
	case "SignatureDoesNotMatch":
		return "the request signature was rejected: the secret access key does not belong to the access key ID " +
			"(check AWS_SECRET_ACCESS_KEY or the profile's aws_secret_access_key), or the region or clock is wrong"
	case "AccessDenied", "AllAccessDisabled":
		return fmt.Sprintf("the credentials were accepted but may not write to bucket %q; "+
			"they need s3:PutObject, s3:GetObject and s3:ListBucket on it (and s3:AbortMultipartUpload)", s.Bucket)
	case "ExpiredToken", "TokenRefreshRequired", "InvalidToken":
		return "the session token has expired or is invalid; refresh the credentials (aws sso login, a new role session)"
	case "RequestTimeTooSkewed":
		return "this machine's clock is too far from the server's; synchronize it"
	case "NoSuchBucket":
		return fmt.Sprintf("bucket %q does not exist at %s; create it or fix the bucket name", s.Bucket, where)
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		return regionHint(re, s)
	case "EntityTooSmall":
		return "the store refused a part below its minimum size; raise part_size_mb"
	}
	switch status {
	case http.StatusForbidden:
		// HEAD answers carry no body, hence no code: a wrong secret and a
		// missing permission look the same.
		return fmt.Sprintf("access denied (HTTP 403): either the credentials are wrong (AccessDenied, "+
			"SignatureDoesNotMatch: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile) or they lack "+
			"s3:GetObject/s3:ListBucket on bucket %q", s.Bucket)
	case http.StatusMovedPermanently:
		return regionHint(re, s)
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return "the S3 server at " + where + " could not be reached or dropped the connection; check the endpoint and that the server is up, then publish again (completed objects are not uploaded twice)"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "the S3 server at " + where + " did not answer in time; publish again (completed objects are not uploaded twice)"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "the host of " + where + " cannot be resolved; check the endpoint"
	}
	return ""
}

func regionHint(re *awshttp.ResponseError, s *settings) string {
	if re != nil && re.Response != nil {
		if r := re.Response.Header.Get("x-amz-bucket-region"); r != "" {
			return fmt.Sprintf("bucket %q is in region %s; set region = %q in the block", s.Bucket, r, r)
		}
	}
	return fmt.Sprintf("bucket %q is in another region; set region in the block", s.Bucket)
}
