package sigv4

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// apiRequests are the request shapes of the API: an operation with a JSON
// body, and the three tag operations on an ARN escaped as one path segment.
var apiRequests = []struct {
	name, method, target, body string
}{
	{"CreateStage", http.MethodPost, "/CreateStage", createBody},
	{"TagResource", http.MethodPost, tagsPath, tagBody},
	{"UntagResource", http.MethodDelete, tagsPath + "?tagKeys=team&tagKeys=env", ""},
	{"ListTagsForResource", http.MethodGet, tagsPath, ""},
}

// TestGoSignerRoundTrip signs the API's requests with the AWS SDK for Go v2
// signer, sends them to a real net/http server and verifies them there,
// with and without a session token and X-Amz-Content-Sha256.
func TestGoSignerRoundTrip(t *testing.T) {
	srv := newTestServer(t, testVerifier(testNow))
	for _, rq := range apiRequests {
		for _, temp := range []bool{false, true} {
			for _, sha := range []string{"", "hash", unsignedPayload} {
				name := rq.name + "/token=" + map[bool]string{false: "no", true: "yes"}[temp] + "/content-sha=" + sha
				t.Run(name, func(t *testing.T) {
					o := defaultOpts()
					o.ContentSHA = sha
					o.SDKHeaders = true
					if temp {
						o.AKID, o.Secret, o.Token = tempAKID, tempSecret, tempToken
					}
					req := newRequest(t, rq.method, srv.URL+rq.target, []byte(rq.body))
					signRequest(t, req, []byte(rq.body), o)
					if res := send(t, req); res.Status != http.StatusOK {
						t.Fatalf("status %d %s: %s", res.Status, res.Code, res.Message)
					}
					last := srv.lastSeen()
					if strings.HasPrefix(rq.target, "/tags/") && !strings.HasPrefix(last.RequestURI, tagsPath) {
						t.Fatalf("server saw RequestURI %q, want the escaped ARN as sent", last.RequestURI)
					}
					t.Logf("SignedHeaders=%s", signedHeadersOf(last.Authorization))
				})
			}
		}
	}
}

// TestTokenNotExpectedIsIgnored: a long-term key with an X-Amz-Security-Token
// it does not need still verifies (the header is only signed data).
func TestTokenNotExpectedIsIgnored(t *testing.T) {
	srv := newTestServer(t, testVerifier(testNow))
	o := defaultOpts()
	o.Token = "some-token-nobody-asked-for"
	req := newRequest(t, http.MethodGet, srv.URL+tagsPath, nil)
	signRequest(t, req, nil, o)
	if res := send(t, req); res.Status != http.StatusOK {
		t.Fatalf("status %d %s: %s", res.Status, res.Code, res.Message)
	}
}

// TestQueryCanonicalization sends query strings whose decoded and encoded
// orders differ, with spaces, '+', '/', '~' and UTF-8, through the server.
func TestQueryCanonicalization(t *testing.T) {
	srv := newTestServer(t, testVerifier(testNow))
	for _, q := range []string{
		"tagKeys=a%2Fb&tagKeys=a-b",
		"tagKeys=b&tagKeys=a&tagKeys=a",
		"z=1&a=x%20y&m=%2B&t=~&u=%E2%9C%93&e=",
		"flag&empty=&A=upper&a=lower",
	} {
		req := newRequest(t, http.MethodDelete, srv.URL+tagsPath+"?"+q, nil)
		signRequest(t, req, nil, defaultOpts())
		if res := send(t, req); res.Status != http.StatusOK {
			t.Errorf("%s: status %d %s: %s", q, res.Status, res.Code, res.Message)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"":                              "",
		"tagKeys=a&tagKeys=b":           "tagKeys=a&tagKeys=b",
		"tagKeys=b&tagKeys=a":           "tagKeys=a&tagKeys=b",
		"b=a-b&b=a/b&a=x+y&c=%2b":       "a=x%20y&b=a%2Fb&b=a-b&c=%2B",
		"k=%7e&k=*&k=%21":               "k=%21&k=%2A&k=~",
		"flag&&x=1=2":                   "flag=&x=1%3D2",
		"%E2%9C%93=%e2%9c%93":           "%E2%9C%93=%E2%9C%93",
		"semi=a;b":                      "semi=a%3Bb",
		"X-Amz-Date=20260314T150926Z&a": "X-Amz-Date=20260314T150926Z&a=",
	} {
		got, e := canonicalQuery(raw)
		if e != nil || got != want {
			t.Errorf("canonicalQuery(%q) = %q, %v; want %q", raw, got, e, want)
		}
	}
	if _, e := canonicalQuery("a=%zz"); e == nil {
		t.Error("canonicalQuery accepted a bad escape")
	}
}

// TestCanonicalURI: the escaped ARN is encoded a second time, '/' kept.
func TestCanonicalURI(t *testing.T) {
	for path, want := range map[string]string{
		"/":            "/",
		"/CreateStage": "/CreateStage",
		tagsPath:       "/tags/arn%253Aaws%253Aivs%253Aus-east-1%253A123456789012%253Astage%252FabcdABCDefgh",
		"/a b/~x":      "/a%20b/~x",
	} {
		if got := canonicalURI(path); got != want {
			t.Errorf("canonicalURI(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestAWSSuiteVectors checks requests from AWS's SigV4 test suite
// (aws-sig-v4-test-suite: get-vanilla, get-vanilla-query-order-key-case,
// post-vanilla) against their published signatures.
func TestAWSSuiteVectors(t *testing.T) {
	const cred = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
	v := &Verifier{
		Service: "service",
		Lookup: func(id string) (string, bool) {
			return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", id == "AKIDEXAMPLE"
		},
		Now: func() time.Time { return time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC) },
	}
	for _, tc := range []struct{ method, target, sig string }{
		{"GET", "/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"GET", "/?Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"POST", "/", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
	} {
		r := httptest.NewRequest(tc.method, "http://example.amazonaws.com"+tc.target, nil)
		r.Header.Set("X-Amz-Date", "20150830T123600Z")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+cred+", SignedHeaders=host;x-amz-date, Signature="+tc.sig)
		if err := v.Verify(r, nil); err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.target, err)
		}
	}
}

// TestInMemoryRequest: a request that never went through a server (no
// RequestURI, Content-Length only in r.ContentLength) verifies too.
func TestInMemoryRequest(t *testing.T) {
	body := []byte(tagBody)
	req := newRequest(t, http.MethodPost, "http://127.0.0.1:4000"+tagsPath, body)
	signRequest(t, req, body, defaultOpts())
	if err := testVerifier(testNow).Verify(req, body); err != nil {
		t.Fatal(err)
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Code: CodeInvalidSignature, Message: "m"}
	if e.Error() != "InvalidSignatureException: m" {
		t.Fatal(e.Error())
	}
}
