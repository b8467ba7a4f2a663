package sigv4

import (
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The one algorithm verified, and SigV4a's, named in its own rejection.
const (
	algorithm       = "AWS4-HMAC-SHA256"
	algorithmSigV4a = "AWS4-ECDSA-P256-SHA256"
	scopeTerminator = "aws4_request"
)

// authorization is a parsed Authorization header.
type authorization struct {
	AccessKeyID   string
	Scope         scope
	SignedHeaders []string // lowercase, sorted, unique; always holds "host"
	Signature     []byte   // 32 bytes
}

// scope is the credential scope: <date>/<region>/<service>/aws4_request.
type scope struct {
	Date, Region, Service string
}

func (s scope) String() string {
	return s.Date + "/" + s.Region + "/" + s.Service + "/" + scopeTerminator
}

// signs reports whether header (lowercase) is among the signed headers.
func (a authorization) signs(header string) bool {
	_, found := slices.BinarySearch(a.SignedHeaders, header)
	return found
}

// parseAuthorization parses
//
//	AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>
//
// The three parameters may come in any order, separated by commas with
// optional spaces; each must appear exactly once and nothing else may.
func parseAuthorization(header string) (authorization, *Error) {
	alg, params, _ := strings.Cut(strings.TrimSpace(header), " ")
	if e := checkAlgorithm(alg); e != nil {
		return authorization{}, e
	}
	fields, e := splitParams(params)
	if e != nil {
		return authorization{}, e
	}
	var a authorization
	if a.AccessKeyID, a.Scope, e = parseCredential(fields["Credential"]); e != nil {
		return authorization{}, e
	}
	if a.SignedHeaders, e = parseSignedHeaders(fields["SignedHeaders"]); e != nil {
		return authorization{}, e
	}
	if a.Signature, e = parseSignature(fields["Signature"]); e != nil {
		return authorization{}, e
	}
	return a, nil
}

func checkAlgorithm(alg string) *Error {
	switch alg {
	case algorithm:
		return nil
	case algorithmSigV4a:
		return errorf(CodeIncompleteSignature, "SigV4a (%s) is not supported; sign with %s.", algorithmSigV4a, algorithm)
	}
	return errorf(CodeIncompleteSignature, "Unsupported Authorization type %q; only %s is supported.", truncate(alg, 32),
		algorithm)
}

// splitParams splits "K=V, K=V, K=V" into exactly Credential, SignedHeaders
// and Signature.
func splitParams(params string) (map[string]string, *Error) {
	fields := make(map[string]string, 3)
	for _, part := range strings.Split(params, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if key == "" {
			return nil, errorf(CodeIncompleteSignature,
				"Authorization header must be '%s Credential=..., SignedHeaders=..., Signature=...'.", algorithm)
		}
		switch key {
		case "Credential", "SignedHeaders", "Signature":
		default:
			return nil, errorf(CodeIncompleteSignature,
				"Authorization header has an unexpected parameter %q; it takes Credential, SignedHeaders and Signature.",
				truncate(key, 32))
		}
		if !ok {
			return nil, errorf(CodeIncompleteSignature, "Authorization header parameter '%s' has no value.", key)
		}
		if _, dup := fields[key]; dup {
			return nil, errorf(CodeIncompleteSignature, "Authorization header has '%s' more than once.", key)
		}
		fields[key] = value
	}
	for _, key := range []string{"Credential", "SignedHeaders", "Signature"} {
		if _, ok := fields[key]; !ok {
			return nil, errorf(CodeIncompleteSignature, "Authorization header requires '%s' parameter.", key)
		}
	}
	return fields, nil
}

// parseCredential parses <AKID>/<yyyymmdd>/<region>/<service>/aws4_request.
func parseCredential(cred string) (string, scope, *Error) {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || slices.Contains(parts, "") {
		return "", scope{}, errorf(CodeIncompleteSignature,
			"Credential must have the form <access key ID>/<YYYYMMDD>/<region>/<service>/aws4_request.")
	}
	if parts[4] != scopeTerminator {
		return "", scope{}, errorf(CodeIncompleteSignature,
			"Credential should be scoped with a valid terminator: '%s', not %q.", scopeTerminator, truncate(parts[4], 32))
	}
	if !isScopeDate(parts[1]) {
		return "", scope{}, errorf(CodeIncompleteSignature, "Credential scope date must be YYYYMMDD, got %q.",
			truncate(parts[1], 32))
	}
	return parts[0], scope{Date: parts[1], Region: parts[2], Service: parts[3]}, nil
}

func isScopeDate(s string) bool {
	t, err := time.Parse("20060102", s)
	return err == nil && t.Format("20060102") == s
}

// parseSignedHeaders parses "content-type;host;x-amz-date". Names must be
// lowercase tokens in strictly ascending order (as every SDK writes them),
// and host must be among them: otherwise a signature could be replayed
// against another host.
func parseSignedHeaders(list string) ([]string, *Error) {
	names := strings.Split(list, ";")
	for i, name := range names {
		if !isLowerToken(name) {
			return nil, errorf(CodeIncompleteSignature,
				"SignedHeaders must be lowercase header names separated by ';', got %q.", truncate(name, 64))
		}
		if i > 0 && names[i-1] >= name {
			return nil, errorf(CodeIncompleteSignature, "SignedHeaders must be sorted and without duplicates.")
		}
	}
	if _, found := slices.BinarySearch(names, "host"); !found {
		return nil, errorf(CodeIncompleteSignature,
			"'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return names, nil
}

// parseSignature decodes the 64 hex digits of the signature.
func parseSignature(s string) ([]byte, *Error) {
	sig, err := hex.DecodeString(s)
	if err != nil || len(sig) != 32 {
		return nil, errorf(CodeIncompleteSignature, "Signature must be 64 hexadecimal digits.")
	}
	return sig, nil
}

// isLowerToken reports whether s is a non-empty HTTP token (RFC 9110
// field-name) without uppercase letters.
func isLowerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hasPresignParams reports whether the query carries the parameters of a
// presigned URL. A malformed query is searched as far as it parses.
func hasPresignParams(rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	q, _ := url.ParseQuery(rawQuery)
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"} {
		if _, ok := q[k]; ok {
			return true
		}
	}
	return false
}
