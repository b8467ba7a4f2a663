// Package sigv4 verifies AWS Signature Version 4 on requests to the API, so
// that the AWS CLI and the AWS SDKs can call the server with their own
// signing code, pointed at it with --endpoint-url.
//
// It owns the server side of SigV4 in its header form only:
//
//	Authorization: AWS4-HMAC-SHA256 Credential=<AKID>/<yyyymmdd>/<region>/<service>/aws4_request,
//	               SignedHeaders=<h1;h2;...>, Signature=<64 hex>
//
// with the request time in an X-Amz-Date header and, optionally, the payload
// hash in X-Amz-Content-Sha256 and a session token in X-Amz-Security-Token.
// It reproduces the canonical request the way the AWS SDK for Go v2, botocore
// (AWS CLI v1) and the AWS SDK for JavaScript v3 build it for a service other
// than S3: the path is the escaped path exactly as sent, URI-encoded once
// more (so %3A is signed as %253A), and the query is decoded, re-encoded per
// RFC 3986 and sorted.
//
// The payload hash is the SHA-256 of the body the caller read, or the value
// of X-Amz-Content-Sha256 when the client sent one (the JavaScript SDK
// does); that value must then also be the body's hash, unless it is
// UNSIGNED-PAYLOAD, which is accepted: the client chose to leave its body
// out of the signature, and no one else can choose so for it because the
// value is itself signed. A session token (X-Amz-Security-Token) is checked
// only for keys that Verifier.SessionToken says have one.
//
// It does not support, and rejects with a message that says so:
//   - presigned URLs (the X-Amz-Signature query-string form);
//   - chunked / streaming payload signing (X-Amz-Content-Sha256:
//     STREAMING-...);
//   - SigV4a (AWS4-ECDSA-P256-SHA256) and any other algorithm;
//   - the Date header in place of X-Amz-Date.
//
// It does not normalize paths (remove "." and ".." segments, merge "//"):
// botocore and the JavaScript SDK sign the normalized form and the Go SDK the
// raw one, and accepting a path other than the one the server routes on would
// let a request be replayed at another route. The API's paths have no such
// segments.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error codes, as AWS services return them. All are sent with HTTP 403.
const (
	// CodeMissingAuthenticationToken: the request carries no Authorization header.
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	// CodeIncompleteSignature: the Authorization or X-Amz-Date header is
	// malformed, incomplete or of a kind this package does not support.
	CodeIncompleteSignature = "IncompleteSignatureException"
	// CodeUnrecognizedClient: unknown access key, or wrong session token.
	CodeUnrecognizedClient = "UnrecognizedClientException"
	// CodeInvalidSignature: wrong scope, expired request, or the signature
	// (or payload hash) does not match.
	CodeInvalidSignature = "InvalidSignatureException"
)

// DefaultService is the signing name of the IVS Real-Time API.
const DefaultService = "ivs"

// DefaultMaxSkew is how far X-Amz-Date may be from the server's clock, as on AWS.
const DefaultMaxSkew = 15 * time.Minute

// The values of X-Amz-Content-Sha256 that are not a hash.
const (
	unsignedPayload = "UNSIGNED-PAYLOAD"
	streamingPrefix = "STREAMING-"
)

const (
	amzDateFormat = "20060102T150405Z"
	scopeDateLen  = len("20060102")
)

// Error is a verification failure. Code is the AWS error code the client
// should see (one of the Code constants, sent with HTTP 403); Message never
// contains the secret key or the full signature.
type Error struct {
	Code    string
	Message string
}

// Error returns "Code: Message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

var (
	errUnrecognizedClient = &Error{CodeUnrecognizedClient, "The security token included in the request is invalid."}
	errSignatureMismatch  = &Error{CodeInvalidSignature,
		"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key " +
			"and signing method."}
)

// Verifier checks SigV4 header signatures. Every field but Lookup has a
// usable zero value; a Verifier is safe for concurrent use if its functions
// are.
type Verifier struct {
	// Service is the signing name the credential scope must carry.
	// Empty means DefaultService ("ivs").
	Service string

	// Region, if not empty, is the only region accepted in the credential
	// scope. Empty accepts any region: the server answers for whatever
	// region the client was configured with.
	Region string

	// Lookup returns the secret access key for an access key ID. A nil
	// Lookup knows no keys.
	Lookup func(accessKeyID string) (secret string, ok bool)

	// SessionToken, if not nil, returns the session token that must come
	// with a temporary access key ID, or "" for a long-term key. When a
	// token is expected the request must carry it in a signed
	// X-Amz-Security-Token header. When none is expected (or SessionToken is
	// nil) the header is ignored, apart from being covered by the signature
	// like any other signed header.
	SessionToken func(accessKeyID string) string

	// MaxSkew is how far X-Amz-Date may be from Now, either way.
	// Zero or negative means DefaultMaxSkew.
	MaxSkew time.Duration

	// Now is the server's clock. Nil means time.Now.
	Now func() time.Time
}

// Verify checks r's signature over body, the request body the caller has
// already read. It returns nil if the request is signed by a known key, or
// an *Error.
//
// On a server r.Host, r.RequestURI and r.URL.RawQuery hold what the client
// sent. For a request built in memory (no RequestURI) the path is taken from
// r.URL.EscapedPath().
func (v *Verifier) Verify(r *http.Request, body []byte) error {
	if err := v.verify(r, body); err != nil {
		return err
	}
	return nil
}

func (v *Verifier) verify(r *http.Request, body []byte) *Error {
	auth, e := authorizationFromRequest(r)
	if e != nil {
		return e
	}
	amzDate, e := requestTime(r)
	if e != nil {
		return e
	}
	if e := v.checkScope(auth.Scope, amzDate); e != nil {
		return e
	}
	if e := v.checkSkew(amzDate); e != nil {
		return e
	}
	payloadHash, e := payloadHashFromHeader(r)
	if e != nil {
		return e
	}
	secret, e := v.credentials(r, auth)
	if e != nil {
		return e
	}
	if payloadHash == "" {
		payloadHash = hashHex(body)
	}
	canonical, e := canonicalRequest(r, auth.SignedHeaders, payloadHash)
	if e != nil {
		return e
	}
	want := signature(secret, auth.Scope, amzDate.Format(amzDateFormat), canonical)
	if !hmac.Equal(want, auth.Signature) {
		return errSignatureMismatch
	}
	// The header's value was what got signed; only now that the signature
	// holds is it worth saying that the body is not what the client hashed.
	if payloadHash != unsignedPayload && payloadHash != hashHex(body) {
		return errorf(CodeInvalidSignature,
			"The provided X-Amz-Content-Sha256 header does not match the SHA-256 of the request body.")
	}
	return nil
}

// authorizationFromRequest finds and parses the one Authorization header,
// rejecting the query-string (presigned) form.
func authorizationFromRequest(r *http.Request) (authorization, *Error) {
	values := r.Header.Values("Authorization")
	presigned := hasPresignParams(r.URL.RawQuery)
	switch {
	case len(values) == 0 && presigned:
		return authorization{}, errorf(CodeIncompleteSignature,
			"Presigned (query-string) authentication is not supported; sign the request with an Authorization header.")
	case len(values) == 0:
		return authorization{}, errorf(CodeMissingAuthenticationToken, "Missing Authentication Token")
	case len(values) > 1:
		return authorization{}, errorf(CodeIncompleteSignature, "Only one Authorization header is allowed.")
	case presigned:
		return authorization{}, errorf(CodeIncompleteSignature,
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be "+
				"specified.")
	}
	return parseAuthorization(values[0])
}

// requestTime parses the one X-Amz-Date header.
func requestTime(r *http.Request) (time.Time, *Error) {
	values := r.Header.Values("X-Amz-Date")
	if len(values) == 0 {
		return time.Time{}, errorf(CodeIncompleteSignature,
			"Authorization header requires existence of an 'X-Amz-Date' header (the 'Date' header is not supported).")
	}
	if len(values) > 1 {
		return time.Time{}, errorf(CodeIncompleteSignature, "Only one X-Amz-Date header is allowed.")
	}
	t, err := time.Parse(amzDateFormat, values[0])
	// Parse accepts what Format would not write (e.g. a leap second);
	// insist on the exact form the string to sign repeats.
	if err != nil || t.Format(amzDateFormat) != values[0] {
		return time.Time{}, errorf(CodeIncompleteSignature,
			"X-Amz-Date must be in the ISO 8601 basic form YYYYMMDD'T'HHMMSS'Z', got %q.", truncate(values[0], 32))
	}
	return t, nil
}

// checkScope compares the credential scope with the service, region and date.
func (v *Verifier) checkScope(s scope, amzDate time.Time) *Error {
	day := amzDate.Format(amzDateFormat)[:scopeDateLen]
	if s.Date != day {
		return errorf(CodeInvalidSignature,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from "+
				"'%s'.", s.Date, day, amzDate.Format(amzDateFormat))
	}
	if want := v.service(); s.Service != want {
		return errorf(CodeInvalidSignature, "Credential should be scoped to correct service: '%s'.", want)
	}
	if v.Region != "" && s.Region != v.Region {
		return errorf(CodeInvalidSignature, "Credential should be scoped to a valid region: '%s'.", v.Region)
	}
	return nil
}

// checkSkew rejects a request whose X-Amz-Date is too far from the clock, in
// AWS's words (which SDKs use to correct their clock).
func (v *Verifier) checkSkew(amzDate time.Time) *Error {
	now := v.now().UTC()
	skew := v.maxSkew()
	stamp := amzDate.Format(amzDateFormat)
	if amzDate.Before(now.Add(-skew)) {
		return errorf(CodeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - %s.)",
			stamp, now.Add(-skew).Format(amzDateFormat), now.Format(amzDateFormat), formatSkew(skew))
	}
	if amzDate.After(now.Add(skew)) {
		return errorf(CodeInvalidSignature, "Signature not yet current: %s is still later than %s (%s + %s.)",
			stamp, now.Add(skew).Format(amzDateFormat), now.Format(amzDateFormat), formatSkew(skew))
	}
	return nil
}

// payloadHashFromHeader returns the X-Amz-Content-Sha256 value the client
// signed with, or "" when there is none and the body's hash is to be used
// (see the package comment). Streaming (chunked) signing is refused.
func payloadHashFromHeader(r *http.Request) (string, *Error) {
	values := r.Header.Values("X-Amz-Content-Sha256")
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", errorf(CodeIncompleteSignature, "Only one X-Amz-Content-Sha256 header is allowed.")
	case strings.HasPrefix(values[0], streamingPrefix):
		return "", errorf(CodeIncompleteSignature,
			"Chunked (streaming) payload signing is not supported: X-Amz-Content-Sha256 must be the hex SHA-256 of the body "+
				"or UNSIGNED-PAYLOAD.")
	case values[0] == unsignedPayload || isLowerHex(values[0], sha256.Size):
		return values[0], nil
	}
	return "", errorf(CodeIncompleteSignature,
		"X-Amz-Content-Sha256 must be the lowercase hex SHA-256 of the body or UNSIGNED-PAYLOAD.")
}

// credentials looks up the secret and checks the session token.
func (v *Verifier) credentials(r *http.Request, auth authorization) (string, *Error) {
	if v.Lookup == nil {
		return "", errUnrecognizedClient
	}
	secret, ok := v.Lookup(auth.AccessKeyID)
	if !ok {
		return "", errUnrecognizedClient
	}
	if v.SessionToken == nil {
		return secret, nil
	}
	want := v.SessionToken(auth.AccessKeyID)
	if want == "" {
		return secret, nil
	}
	got := r.Header.Values("X-Amz-Security-Token")
	if len(got) != 1 || !auth.signs("x-amz-security-token") ||
		subtle.ConstantTimeCompare([]byte(got[0]), []byte(want)) != 1 {
		return "", errUnrecognizedClient
	}
	return secret, nil
}

func (v *Verifier) service() string {
	if v.Service == "" {
		return DefaultService
	}
	return v.Service
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew <= 0 {
		return DefaultMaxSkew
	}
	return v.MaxSkew
}

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

func formatSkew(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return d.String()
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// isLowerHex reports whether s is exactly n bytes in lowercase hex.
func isLowerHex(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// truncate shortens client-supplied text quoted back in a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
