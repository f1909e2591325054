package connect_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sparkenv/sparkenv/runtime/connect"
)

const uuid = "550e8400-e29b-41d4-a716-446655440000"

func TestParseConnString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want connect.ConnString
	}{
		{"sc://myhost.com", connect.ConnString{Host: "myhost.com", Port: 15002}},
		{"sc://myhost.com/", connect.ConnString{Host: "myhost.com", Port: 15002}},
		{"sc://myhost.com:443/;use_ssl=true", connect.ConnString{Host: "myhost.com", Port: 443, UseSSL: true}},
		{"sc://myhost.com:443/;use_ssl=true;token=ABCDEFG", connect.ConnString{Host: "myhost.com", Port: 443, UseSSL: true, Token: "ABCDEFG"}},
		{"sc://localhost:15003/;user_id=Martin;session_id=" + uuid + ";user_agent=my_app;grpc_max_message_size=1048576",
			connect.ConnString{Host: "localhost", Port: 15003, UserID: "Martin", SessionID: uuid, UserAgent: "my_app", MaxMessageSize: 1 << 20}},
		{"sc://10.0.0.1/;x-team=ml;;use_ssl=FALSE", connect.ConnString{Host: "10.0.0.1", Port: 15002, Params: map[string]string{"x-team": "ml"}}},
		{"sc://[::1]:15002/;token=a%2Fb%3Bc", connect.ConnString{Host: "::1", Port: 15002, Token: "a/b;c"}},
		{"sc://spark_driver-0.ns.svc", connect.ConnString{Host: "spark_driver-0.ns.svc", Port: 15002}},
	} {
		got, err := connect.ParseConnString(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
		again, err := connect.ParseConnString(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%s: String() = %s does not parse back: %+v, %v", tc.in, got.String(), again, err)
		}
	}
}

func TestParseConnStringErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"http://myhost.com", `scheme is "http"`},
		{"myhost.com:15002", "want sc://"},
		{"sc://myhost.com:443/mypathprefix/;token=AAAAAAA", `path "/mypathprefix/" is not allowed`},
		{"sc://myhost.com/path", `path "/path"`},
		{"sc://myhost.com:http/", `port "http"`},
		{"sc://myhost.com:0/", `port "0"`},
		{"sc://myhost.com:70000/", `port "70000"`},
		{"sc://myhost.com:/", "empty port"},
		{"sc:///;user_id=a", "no host"},
		{"sc://a:b:c/", "host:port"},
		{"sc://[::1/", "unterminated"},
		{"sc://bad host/", "contains"},
		{"sc://u@host/", "user information"},
		{"sc://host;token=x", "must follow a slash"},
		{"sc://host/?token=x", "no query"},
		{"sc://host/;session_id=not-a-uuid", `session_id "not-a-uuid" is not a UUID`},
		{"sc://host/;use_ssl=yes", `use_ssl is "yes"`},
		{"sc://host/;grpc_max_message_size=-1", "grpc_max_message_size"},
		{"sc://host/;user_id", `"user_id" is not name=value`},
		{"sc://host/;a=b=c", "not name=value"},
		{"sc://host/;user_id=a;user_id=b", "given twice"},
		{"sc://host/;Token=x", "case-sensitive"},
		{"sc://host/;grpc-timeout=1", "reserved"},
		{"sc://host/;token=%zz", "percent-encoding"},
		{"sc://host/;token=a%0Ab", "printable ASCII"},
	} {
		_, err := connect.ParseConnString(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

func TestConnStringRedacts(t *testing.T) {
	t.Parallel()
	cs, err := connect.ParseConnString("sc://h/;token=s3cret;x-key=hidden;user_id=u")
	if err != nil {
		t.Fatal(err)
	}
	if r := cs.Redacted(); strings.Contains(r, "s3cret") || strings.Contains(r, "hidden") || !strings.Contains(r, "user_id=u") {
		t.Errorf("Redacted() = %s", r)
	}
	if _, err := connect.ParseConnString("sc://h/;token=s3cret;oops"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the token: %v", err)
	}
}

func FuzzParseConnString(f *testing.F) {
	for _, s := range []string{
		"sc://myhost.com", "sc://myhost.com:443/;use_ssl=true;token=ABCDEFG",
		"sc://[::1]:1/;session_id=" + uuid, "sc://h/;x-a=%41;;user_agent=a%20b",
		"sc://h:/", "sc://h/p", "sc://a:b:c", "sc://h/;=x", "sc://[fe80::1%25eth0]/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := connect.ParseConnString(s)
		if err != nil {
			return
		}
		out := cs.String()
		again, err := connect.ParseConnString(out)
		if err != nil {
			t.Fatalf("%q parsed, but its rendering %q does not: %v", s, out, err)
		}
		if !reflect.DeepEqual(again, cs) {
			t.Fatalf("%q -> %q -> %+v, want %+v", s, out, again, cs)
		}
		if again.String() != out {
			t.Fatalf("rendering is not stable: %q then %q", out, again.String())
		}
	})
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{
		"archives/env.tar.gz#environment", "pyfiles/a.py", "files/../x", "archives/a#b#c.zip",
		"/abs", "jars/x.jar", "cache/abc", "pyfiles/d/x.py",
	} {
		f.Add(s, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	}
	f.Fuzz(func(t *testing.T, name, sum string) {
		if connect.CheckName(name) != nil {
			return
		}
		ca := connect.ContentAddressed(name, sum)
		if err := connect.CheckName(ca); err != nil {
			t.Fatalf("ContentAddressed(%q) = %q, which CheckName refuses: %v", name, ca, err)
		}
		if connect.ContentAddressed(ca, sum) != ca {
			t.Fatalf("ContentAddressed is not idempotent on %q", ca)
		}
		k1, _, a1 := connect.SplitName(name)
		k2, _, a2 := connect.SplitName(ca)
		if k1 != k2 || a1 != a2 {
			t.Fatalf("ContentAddressed(%q) = %q changed kind or alias", name, ca)
		}
	})
}
