package sigv4

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const validAuthz = "AWS4-HMAC-SHA256 Credential=" + testAKID + "/20260314/us-east-1/ivs/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" +
	"4f1b1c7c7e5f9a1f6bd2f1d0c6a8e3b2a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4"

// FuzzParseAuthorization: the parser never panics, every rejection is an
// IncompleteSignatureException with a bounded message, and whatever it
// accepts is well formed and reads back the same once written out again.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		validAuthz,
		strings.ReplaceAll(validAuthz, ", ", ","),
		"AWS4-HMAC-SHA256 Signature=00, SignedHeaders=host, Credential=A/20260314/r/s/aws4_request",
		"AWS4-HMAC-SHA256 Credential=A/20260314/r/s/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64),
		"AWS4-HMAC-SHA256 Credential=A/20260314/r/s/aws4_request, Credential=B/20260314/r/s/aws4_request",
		"AWS4-ECDSA-P256-SHA256 Credential=A/20260314/s/aws4_request, SignedHeaders=host;x-amz-region-set, Signature=3045",
		"AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		"Bearer token",
		"", " ", ",", "=", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 ,,,,",
		"AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;, Signature=zz",
		"AWS4-HMAC-SHA256 Credential=A/20261399/r/s/aws4_request, SignedHeaders=Host, Signature=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		a, e := parseAuthorization(header)
		if e != nil {
			if e.Code != CodeIncompleteSignature || e.Message == "" || len(e.Message) > 300 {
				t.Fatalf("bad rejection %+v", e)
			}
			return
		}
		checkParsed(t, a)
		again, e := parseAuthorization(formatAuthorization(a))
		if e != nil || !equalAuthorization(a, again) {
			t.Fatalf("round trip: %+v -> %+v, %v", a, again, e)
		}
	})
}

// checkParsed asserts the invariants Verify relies on.
func checkParsed(t *testing.T, a authorization) {
	t.Helper()
	if a.AccessKeyID == "" || strings.Contains(a.AccessKeyID, "/") || !isScopeDate(a.Scope.Date) ||
		a.Scope.Region == "" || a.Scope.Service == "" || len(a.Signature) != 32 {
		t.Fatalf("accepted a malformed credential or signature: %+v", a)
	}
	if !slices.IsSorted(a.SignedHeaders) || !a.signs("host") || len(slices.Compact(slices.Clone(a.SignedHeaders))) != len(a.SignedHeaders) {
		t.Fatalf("accepted bad SignedHeaders %q", a.SignedHeaders)
	}
	for _, h := range a.SignedHeaders {
		if !isLowerToken(h) {
			t.Fatalf("accepted header name %q", h)
		}
	}
}

func formatAuthorization(a authorization) string {
	return algorithm + " Credential=" + a.AccessKeyID + "/" + a.Scope.String() +
		", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") + ", Signature=" + hexOf(a.Signature)
}

func equalAuthorization(a, b authorization) bool {
	return a.AccessKeyID == b.AccessKeyID && a.Scope == b.Scope &&
		slices.Equal(a.SignedHeaders, b.SignedHeaders) && slices.Equal(a.Signature, b.Signature)
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&0xF])
	}
	return s.String()
}

// fuzzNow is the clock in FuzzVerify; signatures are made for it.
var fuzzNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// FuzzVerify feeds Verify arbitrary methods, paths, queries, one arbitrary
// header, an arbitrary Authorization and X-Amz-Date, and bodies:
//
//  1. as they are, against a secret drawn at random per process, which the
//     fuzzer cannot know: Verify must never panic and never accept;
//  2. signed by the AWS SDK for Go v2's signer: Verify must accept with the
//     right secret (unless the input is one the package documents it
//     canonicalizes differently), and refuse a wrong secret and a changed
//     body.
func FuzzVerify(f *testing.F) {
	type seed struct {
		method, path, query, name, value, authz, date string
		body                                          []byte
		contentSHA                                    bool
	}
	date := fuzzNow.Format(amzDateFormat)
	for _, s := range []seed{
		{"POST", "/CreateStage", "", "Content-Type", jsonType, validAuthz, date, []byte(createBody), false},
		{"POST", tagsPath, "", "Content-Type", jsonType, validAuthz, date, []byte(tagBody), true},
		{"DELETE", tagsPath, "tagKeys=a&tagKeys=b", "Amz-Sdk-Request", "attempt=1; max=3", validAuthz, date, nil, false},
		{"GET", tagsPath, "", "X-Amz-Security-Token", tempToken, validAuthz, date, nil, true},
		{"GET", "/a%2Fb/%7E/c d", "x=%zz&y=a+b&z=%2B;w", "X-Custom", "  a   b  ", "AWS4-HMAC-SHA256 Credential=x/20260314/r/ivs/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64), date, []byte("x"), false},
		{"GET", "", "X-Amz-Signature=1&X-Amz-Credential=2", "", "", "", "", nil, false},
		{"PUT", "//..//./", "=&&=", "Host", "evil.example", "AWS4-HMAC-SHA256 Credential=a/20260313/r/ivs/aws4_request, SignedHeaders=host, Signature=00", "20260314T150926Z", nil, false},
		{"", "relative", "", "x", "\t\x00\xff", "garbage", "20261399T999999Z", []byte{0}, false},
	} {
		f.Add(s.method, s.path, s.query, s.name, s.value, s.authz, s.date, s.body, s.contentSHA)
	}
	unknowable := rand.Text()
	f.Fuzz(func(t *testing.T, method, path, query, name, value, authz, date string, body []byte, contentSHA bool) {
		r := fuzzRequest(method, path, query, name, value, body)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if date != "" {
			r.Header.Set("X-Amz-Date", date)
		}
		r.RequestURI = path + "?" + query // as a server would hold it
		mustRefuse(t, fuzzVerifier(unknowable), r, body, "")

		r = fuzzRequest(method, path, query, name, value, body)
		hash := sha256Hex(body)
		if contentSHA {
			r.Header.Set("X-Amz-Content-Sha256", hash)
		}
		creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hash, "ivs", testRegion, fuzzNow); err != nil {
			t.Skip(err)
		}
		r.RequestURI = r.URL.RequestURI() // what the Go client writes on the request line
		code := ""                        // any refusal will do
		if signedAlike(r, name, value) {
			if err := fuzzVerifier(testSecret).Verify(r, body); err != nil {
				t.Fatalf("refused a request the Go SDK signed: %v\n%s %q %+v", err, r.Method, r.RequestURI, r.Header)
			}
			code = CodeInvalidSignature
		}
		mustRefuse(t, fuzzVerifier(wrongSecret), r, body, code)
		if len(body) > 0 {
			changed := slices.Clone(body)
			changed[0] ^= 1
			mustRefuse(t, fuzzVerifier(testSecret), r, changed, code)
		}
	})
}

// fuzzRequest builds an in-memory request; path is taken as escaped.
func fuzzRequest(method, path, query, name, value string, body []byte) *http.Request {
	u := &url.URL{Scheme: "http", Host: "example.com", RawQuery: query}
	if p, err := url.PathUnescape(path); err == nil {
		u.Path, u.RawPath = p, path
	} else {
		u.Path = path
	}
	r := &http.Request{Method: method, URL: u, Host: u.Host, Header: http.Header{}, ContentLength: int64(len(body))}
	if name != "" {
		r.Header.Set(name, value)
	}
	return r
}

// fuzzVerifier accepts any access key, with the given secret.
func fuzzVerifier(secret string) *Verifier {
	return &Verifier{
		Lookup: func(string) (string, bool) { return secret, true },
		Now:    func() time.Time { return fuzzNow },
	}
}

func mustRefuse(t *testing.T, v *Verifier, r *http.Request, body []byte, code string) {
	t.Helper()
	err := v.Verify(r, body)
	if err == nil {
		t.Fatalf("accepted without the secret: %s %q %+v", r.Method, r.RequestURI, r.Header)
	}
	var e *Error
	if !errors.As(err, &e) || (code != "" && e.Code != code) {
		t.Fatalf("got %T %v, want *Error %s", err, err, code)
	}
	switch e.Code {
	case CodeMissingAuthenticationToken, CodeIncompleteSignature, CodeUnrecognizedClient, CodeInvalidSignature:
	default:
		t.Fatalf("unknown code %q", e.Code)
	}
}

// signedAlike reports whether this package should accept what the Go SDK
// signed: not when the query also carries presigned-URL parameters (refused
// by design), nor when the fuzzed header is one this package canonicalizes
// otherwise: it must be a plain token name that no signing header shadows,
// with a printable-ASCII value (the SDKs differ among themselves on tabs and
// Unicode spaces).
func signedAlike(r *http.Request, name, value string) bool {
	if hasPresignParams(r.URL.RawQuery) {
		return false
	}
	if name == "" {
		return true
	}
	switch strings.ToLower(name) {
	case "host", "content-length", "authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token":
		return false
	}
	if !isLowerToken(strings.ToLower(name)) {
		return false
	}
	for i := 0; i < len(value); i++ {
		if value[i] < 0x20 || value[i] > 0x7e {
			return false
		}
	}
	return true
}
