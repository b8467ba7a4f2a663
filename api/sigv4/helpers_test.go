package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Test credentials: a long-term key and a temporary one with its token.
const (
	testAKID     = "AKIDSTAGEHANDTEST01"
	testSecret   = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSTAGEHANDKEY"
	tempAKID     = "ASIASTAGEHANDTEST01"
	tempSecret   = "tempSecretKeyForTheSessionCredential0000"
	tempToken    = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN//////////+/=="
	testRegion   = "us-east-1"
	testARN      = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCDefgh"
	escapedARN   = "arn%3Aaws%3Aivs%3Aus-east-1%3A123456789012%3Astage%2FabcdABCDefgh"
	tagsPath     = "/tags/" + escapedARN
	emptySHA256  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	jsonType     = "application/json"
	createBody   = `{"name":"stage-1","participantTokenConfigurations":[]}`
	tagBody      = `{"tags":{"team":"video","env":"test"}}`
	wrongSecret  = "not-the-secret-key-00000000000000000000"
	unknownAKID  = "AKIDUNKNOWN000000000"
	otherService = "execute-api"
)

// testNow is the server's clock in the signed-request tests.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// testVerifier knows the two test keys and expects the temporary key's token.
func testVerifier(now time.Time) *Verifier {
	return &Verifier{
		Service: "ivs",
		Lookup: func(id string) (string, bool) {
			switch id {
			case testAKID:
				return testSecret, true
			case tempAKID:
				return tempSecret, true
			}
			return "", false
		},
		SessionToken: func(id string) string {
			if id == tempAKID {
				return tempToken
			}
			return ""
		},
		Now: func() time.Time { return now },
	}
}

// seen is what the test server saw of the last request.
type seen struct {
	Authorization string
	RequestURI    string
	RawPath       string
	Host          string
	Err           *Error
}

// testServer is a net/http server on 127.0.0.1 that verifies every request
// as the API server will: 200 with a small JSON body when the signature
// holds, else 403 with x-amzn-ErrorType and {"message": ...}.
type testServer struct {
	*httptest.Server
	mu   sync.Mutex
	last seen
}

func newTestServer(t testing.TB, v *Verifier) *testServer {
	t.Helper()
	s := &testServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		verr := v.Verify(r, body)
		got := seen{Authorization: r.Header.Get("Authorization"), RequestURI: r.RequestURI, RawPath: r.URL.RawPath, Host: r.Host}
		if verr != nil && !errors.As(verr, &got.Err) {
			t.Errorf("verification error %T %v is not an *Error", verr, verr)
		}
		s.mu.Lock()
		s.last = got
		s.mu.Unlock()
		writeResult(w, r, got.Err)
	}))
	t.Cleanup(s.Close)
	return s
}

func writeResult(w http.ResponseWriter, r *http.Request, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	if e != nil {
		w.Header().Set("x-amzn-ErrorType", e.Code)
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": e.Message})
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/tags/") && r.Method == http.MethodGet:
		_, _ = io.WriteString(w, `{"tags":{}}`)
	case strings.HasPrefix(r.URL.Path, "/tags/"):
		_, _ = io.WriteString(w, `{}`)
	default:
		_, _ = io.WriteString(w, `{"stages":[]}`)
	}
}

func (s *testServer) lastSeen() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// signOpts say how signRequest signs.
type signOpts struct {
	AKID, Secret, Token string
	Service, Region     string
	When                time.Time
	ContentSHA          string // "" none, "hash" the body's hash, else this literal value
	SDKHeaders          bool   // add amz-sdk-invocation-id and amz-sdk-request, as the Go SDK does
}

func defaultOpts() signOpts {
	return signOpts{AKID: testAKID, Secret: testSecret, Service: "ivs", Region: testRegion, When: testNow}
}

// newRequest builds a client request for base+target; a body sets
// Content-Type: application/json as the SDKs do.
func newRequest(t testing.TB, method, url string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", jsonType)
	}
	return req
}

// signRequest signs req with the AWS SDK for Go v2's SigV4 signer.
func signRequest(t testing.TB, req *http.Request, body []byte, o signOpts) {
	t.Helper()
	hash := sha256Hex(body)
	switch o.ContentSHA {
	case "":
	case "hash":
		req.Header.Set("X-Amz-Content-Sha256", hash)
	default:
		req.Header.Set("X-Amz-Content-Sha256", o.ContentSHA)
		hash = o.ContentSHA
	}
	if o.SDKHeaders {
		req.Header.Set("Amz-Sdk-Invocation-Id", "7d8e2b9c-0f1a-4c3b-9d2e-5a6b7c8d9e0f")
		req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	}
	creds := aws.Credentials{AccessKeyID: o.AKID, SecretAccessKey: o.Secret, SessionToken: o.Token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, o.Service, o.Region, o.When); err != nil {
		t.Fatal(err)
	}
}

// result is the server's answer as a client sees it.
type result struct {
	Status  int
	Code    string
	Message string
}

func send(t testing.TB, req *http.Request) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Message string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return result{Status: resp.StatusCode, Code: resp.Header.Get("x-amzn-ErrorType"), Message: body.Message}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// setBody replaces the body a request will send, keeping its length.
func setBody(req *http.Request, body []byte) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
}

// signatureOf returns the Signature= value of an Authorization header.
func signatureOf(authz string) string {
	_, sig, _ := strings.Cut(authz, "Signature=")
	return sig
}

// signedHeadersOf returns the SignedHeaders= value of an Authorization header.
func signedHeadersOf(authz string) string {
	_, rest, _ := strings.Cut(authz, "SignedHeaders=")
	list, _, _ := strings.Cut(rest, ",")
	return list
}

// isCode reports whether err is an *Error with code.
func isCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
