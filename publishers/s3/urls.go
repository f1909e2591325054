package s3

import (
	"net/url"
	"strings"
)

// Location is what the URL forms of an object depend on.
type Location struct {
	Bucket string
	// Region is the bucket's region; "" means us-east-1.
	Region string
	// Endpoint is the base URL of an S3-compatible store; "" means AWS.
	Endpoint  string
	PathStyle bool
	// WebsiteEndpoint, when set, is the base URL the bucket's static
	// website is served from; it wins over any derived form.
	WebsiteEndpoint string
}

// URL schemes of a receipt.
const (
	SchemeS3      = "s3"
	SchemeS3A     = "s3a" // Hadoop's S3A connector, what Spark reads
	SchemeHTTPS   = "https"
	SchemeWebsite = "website"
)

// URLs returns the forms under which the object key of loc is reachable:
// "s3" and "s3a" always, "https" (the REST endpoint) always, and "website"
// when the store has a known static-website endpoint or loc names one.
func URLs(loc Location, key string) map[string]string {
	out := map[string]string{
		SchemeS3:  "s3://" + loc.Bucket + "/" + key,
		SchemeS3A: "s3a://" + loc.Bucket + "/" + key,
	}
	esc := escapeKey(key)
	region := loc.Region
	if region == "" {
		region = "us-east-1"
	}
	if loc.Endpoint != "" {
		// Path style works on every S3-compatible store and with bucket
		// names holding dots, which break the wildcard certificate of
		// virtual hosts.
		out[SchemeHTTPS] = strings.TrimRight(loc.Endpoint, "/") + "/" + loc.Bucket + "/" + esc
	} else {
		domain := awsDomain(region)
		if loc.PathStyle || strings.Contains(loc.Bucket, ".") {
			out[SchemeHTTPS] = "https://s3." + region + "." + domain + "/" + loc.Bucket + "/" + esc
		} else {
			out[SchemeHTTPS] = "https://" + loc.Bucket + ".s3." + region + "." + domain + "/" + esc
		}
	}
	if w := websiteBase(loc, region); w != "" {
		out[SchemeWebsite] = w + "/" + esc
	}
	return out
}

// websiteBase is the static-website base URL of the bucket, or "".
func websiteBase(loc Location, region string) string {
	if loc.WebsiteEndpoint != "" {
		return strings.TrimRight(loc.WebsiteEndpoint, "/")
	}
	if loc.Endpoint == "" {
		// AWS website endpoints are plain HTTP. The regions that existed
		// before 2014 use "s3-website-<region>", later ones "s3-website.<region>".
		sep := "."
		if dashWebsiteRegions[region] {
			sep = "-"
		}
		return "http://" + loc.Bucket + ".s3-website" + sep + region + "." + awsDomain(region)
	}
	u, err := url.Parse(loc.Endpoint)
	if err != nil {
		return ""
	}
	switch strings.ToLower(u.Hostname()) {
	case "storage.yandexcloud.net":
		return "https://" + loc.Bucket + ".website.yandexcloud.net"
	}
	return ""
}

// dashWebsiteRegions use the older "s3-website-<region>" host form
// (AWS General Reference, "Amazon S3 website endpoints").
var dashWebsiteRegions = map[string]bool{
	"us-east-1":      true,
	"us-west-1":      true,
	"us-west-2":      true,
	"ap-southeast-1": true,
	"ap-southeast-2": true,
	"ap-northeast-1": true,
	"eu-west-1":      true,
	"sa-east-1":      true,
	"us-gov-west-1":  true,
}

func awsDomain(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// escapeKey percent-encodes a key for a URL path the way S3 signs it: only
// unreserved characters and '/' stay literal ('+' in particular would read
// as a space on some S3 front ends).
func escapeKey(k string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
