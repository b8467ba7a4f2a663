package sigv4

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// TestRejections signs a request with the Go SDK's signer (unless the case
// says otherwise), spoils one thing, sends it to a real server and checks the
// error code and message the client gets back.
func TestRejections(t *testing.T) {
	type tc struct {
		name     string
		method   string
		target   string
		body     string
		opts     func(*signOpts)                     // changes how it is signed
		unsigned bool                                // send without signing
		tamper   func(t *testing.T, r *http.Request) // spoils the signed request
		code     string                              // "" means accepted
		msg      string                              // substring of the message
	}
	at := func(d time.Duration) func(*signOpts) { return func(o *signOpts) { o.When = testNow.Add(d) } }
	setAuthz := func(f func(string) string) func(*testing.T, *http.Request) {
		return func(_ *testing.T, r *http.Request) { r.Header.Set("Authorization", f(r.Header.Get("Authorization"))) }
	}
	cases := []tc{
		{name: "valid", code: ""},
		{name: "no Authorization header", unsigned: true,
			code: CodeMissingAuthenticationToken, msg: "Missing Authentication Token"},
		{name: "garbage header", tamper: setAuthz(func(string) string { return "garbage" }),
			code: CodeIncompleteSignature, msg: "Unsupported Authorization type"},
		{name: "garbage after algorithm", tamper: setAuthz(func(string) string { return "AWS4-HMAC-SHA256 ,,,==" }),
			code: CodeIncompleteSignature, msg: "must be 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'"},
		{name: "unknown parameter", tamper: setAuthz(func(a string) string { return a + ", Extra=1" }),
			code: CodeIncompleteSignature, msg: "unexpected parameter \"Extra\""},
		{name: "wrong algorithm", tamper: setAuthz(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1) }),
			code: CodeIncompleteSignature, msg: "only AWS4-HMAC-SHA256 is supported"},
		{name: "sigv4a", tamper: setAuthz(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1) }),
			code: CodeIncompleteSignature, msg: "SigV4a"},
		{name: "missing SignedHeaders", tamper: setAuthz(func(a string) string {
			return strings.Replace(a, "SignedHeaders="+signedHeadersOf(a)+", ", "", 1)
		}), code: CodeIncompleteSignature, msg: "requires 'SignedHeaders' parameter"},
		{name: "missing Signature", tamper: setAuthz(func(a string) string { return strings.Replace(a, ", Signature="+signatureOf(a), "", 1) }),
			code: CodeIncompleteSignature, msg: "requires 'Signature' parameter"},
		{name: "short Signature", tamper: setAuthz(func(a string) string { return a[:len(a)-2] }),
			code: CodeIncompleteSignature, msg: "64 hexadecimal digits"},
		{name: "bad credential", tamper: setAuthz(func(a string) string { return strings.Replace(a, "/aws4_request", "", 1) }),
			code: CodeIncompleteSignature, msg: "Credential must have the form"},
		{name: "bad terminator", tamper: setAuthz(func(a string) string { return strings.Replace(a, "/aws4_request", "/aws5_request", 1) }),
			code: CodeIncompleteSignature, msg: "valid terminator"},
		{name: "host not signed", tamper: setAuthz(func(a string) string { return strings.Replace(a, "host;", "", 1) }),
			code: CodeIncompleteSignature, msg: "'Host' or ':authority' must be a 'SignedHeader'"},
		{name: "unsorted SignedHeaders", tamper: setAuthz(func(a string) string {
			return strings.Replace(a, "content-type;host", "host;content-type", 1)
		}), code: CodeIncompleteSignature, msg: "sorted"},
		{name: "two Authorization headers", tamper: func(_ *testing.T, r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) },
			code: CodeIncompleteSignature, msg: "Only one Authorization header"},
		{name: "X-Amz-Date missing", tamper: func(_ *testing.T, r *http.Request) { r.Header.Del("X-Amz-Date") },
			code: CodeIncompleteSignature, msg: "'X-Amz-Date'"},
		{name: "X-Amz-Date malformed", tamper: func(_ *testing.T, r *http.Request) { r.Header.Set("X-Amz-Date", "2026-03-14T15:09:26Z") },
			code: CodeIncompleteSignature, msg: "YYYYMMDD'T'HHMMSS'Z'"},
		{name: "unknown access key", opts: func(o *signOpts) { o.AKID = unknownAKID },
			code: CodeUnrecognizedClient, msg: "The security token included in the request is invalid."},
		{name: "wrong secret", opts: func(o *signOpts) { o.Secret = wrongSecret },
			code: CodeInvalidSignature, msg: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."},
		{name: "tampered body", tamper: func(_ *testing.T, r *http.Request) {
			setBody(r, []byte(strings.Replace(createBody, "stage-1", "stage-2", 1)))
		},
			code: CodeInvalidSignature, msg: "does not match the signature you provided"},
		{name: "tampered body with X-Amz-Content-Sha256", opts: func(o *signOpts) { o.ContentSHA = "hash" },
			tamper: func(_ *testing.T, r *http.Request) {
				setBody(r, []byte(strings.Replace(createBody, "stage-1", "stage-2", 1)))
			},
			code: CodeInvalidSignature, msg: "X-Amz-Content-Sha256 header does not match"},
		{name: "tampered body with UNSIGNED-PAYLOAD is accepted", opts: func(o *signOpts) { o.ContentSHA = unsignedPayload },
			tamper: func(_ *testing.T, r *http.Request) {
				setBody(r, []byte(strings.Replace(createBody, "stage-1", "stage-2", 1)))
			}},
		{name: "streaming payload", opts: func(o *signOpts) { o.ContentSHA = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" },
			code: CodeIncompleteSignature, msg: "streaming"},
		{name: "malformed X-Amz-Content-Sha256", opts: func(o *signOpts) { o.ContentSHA = "abc" },
			code: CodeIncompleteSignature, msg: "X-Amz-Content-Sha256 must be"},
		{name: "tampered path", method: http.MethodPost, target: tagsPath, body: tagBody,
			tamper: func(t *testing.T, r *http.Request) {
				t.Helper()
				r.URL = mustURL(t, strings.Replace(r.URL.String(), "abcdABCDefgh", "abcdABCDefgX", 1))
			},
			code: CodeInvalidSignature, msg: "does not match the signature you provided"},
		{name: "path escaped differently", method: http.MethodGet, target: tagsPath,
			tamper: func(_ *testing.T, r *http.Request) {
				// Same decoded path, other bytes: the signature covers the bytes.
				r.URL.RawPath = "/tags/arn:aws:ivs:us-east-1:123456789012:stage%2FabcdABCDefgh"
			},
			code: CodeInvalidSignature, msg: "does not match the signature you provided"},
		{name: "tampered query", method: http.MethodDelete, target: tagsPath + "?tagKeys=a&tagKeys=b",
			tamper: func(_ *testing.T, r *http.Request) { r.URL.RawQuery = "tagKeys=a&tagKeys=c" },
			code:   CodeInvalidSignature, msg: "does not match the signature you provided"},
		{name: "query parameter dropped", method: http.MethodDelete, target: tagsPath + "?tagKeys=a&tagKeys=b",
			tamper: func(_ *testing.T, r *http.Request) { r.URL.RawQuery = "tagKeys=a" },
			code:   CodeInvalidSignature, msg: "does not match the signature you provided"},
		{name: "tampered signed header", tamper: func(_ *testing.T, r *http.Request) { r.Header.Set("Content-Type", "application/x-amz-json-1.1") },
			code: CodeInvalidSignature, msg: "does not match the signature you provided"},
		{name: "tampered host", tamper: func(_ *testing.T, r *http.Request) { r.Host = strings.Replace(r.URL.Host, "127.0.0.1", "localhost", 1) },
			code: CodeInvalidSignature, msg: "does not match the signature you provided"},
		{name: "tampered X-Amz-Date", tamper: func(_ *testing.T, r *http.Request) {
			r.Header.Set("X-Amz-Date", testNow.Add(time.Second).Format(amzDateFormat))
		},
			code: CodeInvalidSignature, msg: "does not match the signature you provided"},
		{name: "signed header removed", tamper: func(_ *testing.T, r *http.Request) { r.Header.Del("Content-Type") },
			code: CodeInvalidSignature, msg: "'content-type' is listed in SignedHeaders"},
		{name: "unsigned header added is ignored", tamper: func(_ *testing.T, r *http.Request) { r.Header.Set("X-Extra", "1") }},
		{name: "wrong service in scope", opts: func(o *signOpts) { o.Service = otherService },
			code: CodeInvalidSignature, msg: "Credential should be scoped to correct service: 'ivs'."},
		{name: "scope date mismatch", tamper: setAuthz(func(a string) string {
			// X-Amz-Date says the 14th, the scope the 13th.
			return strings.Replace(a, "/20260314/", "/20260313/", 1)
		}),
			code: CodeInvalidSignature, msg: "Date in Credential scope does not match YYYYMMDD"},
		{name: "skew -16 min", opts: at(-16 * time.Minute), code: CodeInvalidSignature, msg: "Signature expired: 20260314T145326Z is now earlier than 20260314T145426Z (20260314T150926Z - 15 min.)"},
		{name: "skew +16 min", opts: at(16 * time.Minute), code: CodeInvalidSignature, msg: "Signature not yet current: 20260314T152526Z is still later than 20260314T152426Z (20260314T150926Z + 15 min.)"},
		{name: "skew -14 min", opts: at(-14 * time.Minute)},
		{name: "skew +14 min", opts: at(14 * time.Minute)},
		{name: "skew exactly 15 min", opts: at(-15 * time.Minute)},
		{name: "token expected, missing", opts: func(o *signOpts) { o.AKID, o.Secret = tempAKID, tempSecret },
			code: CodeUnrecognizedClient, msg: "security token included in the request is invalid"},
		{name: "token expected, wrong", opts: func(o *signOpts) { o.AKID, o.Secret, o.Token = tempAKID, tempSecret, tempToken+"x" },
			code: CodeUnrecognizedClient, msg: "security token included in the request is invalid"},
		{name: "token expected, not signed", opts: func(o *signOpts) { o.AKID, o.Secret = tempAKID, tempSecret },
			tamper: func(_ *testing.T, r *http.Request) { r.Header.Set("X-Amz-Security-Token", tempToken) },
			code:   CodeUnrecognizedClient, msg: "security token included in the request is invalid"},
		{name: "token expected, present", opts: func(o *signOpts) { o.AKID, o.Secret, o.Token = tempAKID, tempSecret, tempToken }},
		{name: "query string and header auth", tamper: func(_ *testing.T, r *http.Request) { r.URL.RawQuery = "X-Amz-Signature=00" },
			code: CodeIncompleteSignature, msg: "Only one auth mechanism allowed"},
		{name: "presigned URL", unsigned: true, tamper: presign,
			code: CodeIncompleteSignature, msg: "Presigned (query-string) authentication is not supported"},
	}
	srv := newTestServer(t, testVerifier(testNow))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method, target, body := c.method, c.target, c.body
			if method == "" {
				method, target, body = http.MethodPost, "/CreateStage", createBody
			}
			req := newRequest(t, method, srv.URL+target, []byte(body))
			o := defaultOpts()
			if c.opts != nil {
				c.opts(&o)
			}
			if !c.unsigned {
				signRequest(t, req, []byte(body), o)
			}
			sig := signatureOf(req.Header.Get("Authorization"))
			if c.tamper != nil {
				c.tamper(t, req)
			}
			res := send(t, req)
			t.Logf("%d %s: %s", res.Status, res.Code, res.Message)
			if c.code == "" {
				if res.Status != http.StatusOK {
					t.Fatalf("rejected: %d %s: %s", res.Status, res.Code, res.Message)
				}
				return
			}
			if res.Status != http.StatusForbidden || res.Code != c.code || !strings.Contains(res.Message, c.msg) {
				t.Fatalf("got %d %s: %q\nwant 403 %s: ...%q...", res.Status, res.Code, res.Message, c.code, c.msg)
			}
			for _, secret := range []string{testSecret, tempSecret, tempToken, sig} {
				if secret != "" && strings.Contains(res.Message, secret) {
					t.Fatalf("message leaks a secret or the signature: %q", res.Message)
				}
			}
		})
	}
}

// presign turns r into a presigned URL, the form this package refuses.
func presign(t *testing.T, r *http.Request) {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, sha256Hex([]byte(createBody)), "ivs", testRegion, testNow)
	if err != nil {
		t.Fatal(err)
	}
	r.URL = mustURL(t, signed)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestRegion: a Verifier with a Region refuses other regions.
func TestRegion(t *testing.T) {
	v := testVerifier(testNow)
	v.Region = "us-west-2"
	srv := newTestServer(t, v)
	for region, want := range map[string]string{"us-west-2": "", "us-east-1": CodeInvalidSignature} {
		o := defaultOpts()
		o.Region = region
		req := newRequest(t, http.MethodPost, srv.URL+"/CreateStage", []byte(createBody))
		signRequest(t, req, []byte(createBody), o)
		if res := send(t, req); res.Code != want {
			t.Errorf("region %s: got %d %s %q, want %q", region, res.Status, res.Code, res.Message, want)
		}
	}
}

// TestNilLookup: a Verifier that knows no keys refuses everything, and the
// zero Verifier's defaults (service "ivs", 15 minutes, time.Now) apply.
func TestNilLookup(t *testing.T) {
	req := newRequest(t, http.MethodPost, "http://127.0.0.1:1/CreateStage", []byte(createBody))
	o := defaultOpts()
	o.When = time.Now()
	signRequest(t, req, []byte(createBody), o)
	var zero Verifier
	if err := zero.Verify(req, []byte(createBody)); !isCode(err, CodeUnrecognizedClient) {
		t.Fatalf("zero Verifier: %v", err)
	}
	zero.Lookup = testVerifier(testNow).Lookup
	if err := zero.Verify(req, []byte(createBody)); err != nil {
		t.Fatalf("zero Verifier with Lookup: %v", err)
	}
}
