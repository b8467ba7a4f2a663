package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// canonicalRequest builds
//
//	METHOD \n canonical URI \n canonical query \n canonical headers \n signed headers \n payload hash
func canonicalRequest(r *http.Request, signed []string, payloadHash string) (string, *Error) {
	query, e := canonicalQuery(r.URL.RawQuery)
	if e != nil {
		return "", e
	}
	headers, e := canonicalHeaders(r, signed)
	if e != nil {
		return "", e
	}
	return strings.Join([]string{
		r.Method,
		canonicalURI(requestPath(r)),
		query,
		headers,
		strings.Join(signed, ";"),
		payloadHash,
	}, "\n"), nil
}

// requestPath returns the path exactly as the client sent it. On a server
// that is the request-target in r.RequestURI, which, unlike r.URL, no
// middleware rewrites and no re-escaping can alter; a request built in
// memory, or sent in absolute form, falls back to r.URL.EscapedPath, which is
// what the Go SDK signs on its side.
func requestPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		path, _, _ := strings.Cut(r.RequestURI, "?")
		return path
	}
	if path := r.URL.EscapedPath(); path != "" {
		return path
	}
	return "/"
}

// canonicalURI URI-encodes the already escaped path once more, keeping '/':
// for every service but S3 that is what the SDKs sign (the Go SDK's
// DisableURIPathEscaping is false by default, botocore quotes the path with
// safe='/~', the JavaScript SDK's uriEscapePath is true). So the ARN segment
// arn%3Aaws%3Aivs... is signed as arn%253Aaws%253Aivs....
func canonicalURI(escapedPath string) string {
	return uriEncode(escapedPath, false)
}

// canonicalQuery decodes each name and value (a '+' is a space, as
// url.ParseQuery reads it), encodes them per RFC 3986, and sorts the pairs by
// encoded name, then encoded value, as the SDKs do after encoding.
func canonicalQuery(rawQuery string) (string, *Error) {
	type pair struct{ key, value string }
	var pairs []pair
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return "", errorf(CodeIncompleteSignature, "The query string is not validly percent-encoded.")
		}
		pairs = append(pairs, pair{uriEncode(key, true), uriEncode(value, true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].key != pairs[j].key {
			return pairs[i].key < pairs[j].key
		}
		return pairs[i].value < pairs[j].value
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String(), nil
}

// canonicalHeaders writes "name:value\n" for each signed header, in the
// order of SignedHeaders (already sorted), values joined with ','.
func canonicalHeaders(r *http.Request, signed []string) (string, *Error) {
	values := lowerHeaders(r)
	var b strings.Builder
	for _, name := range signed {
		vs, ok := values[name]
		if !ok {
			return "", errorf(CodeInvalidSignature, "Header '%s' is listed in SignedHeaders but is not in the request.", name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range vs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(trimAll(v))
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// lowerHeaders indexes the request's headers by lowercase name, merging
// names that differ only in case, and puts back the two a Go server takes
// out of r.Header: Host (into r.Host) and, for a request built in memory,
// Content-Length (into r.ContentLength).
func lowerHeaders(r *http.Request) map[string][]string {
	m := make(map[string][]string, len(r.Header)+1)
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		m[lk] = append(m[lk], vs...)
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	m["host"] = []string{host}
	if _, ok := m["content-length"]; !ok && r.ContentLength > 0 {
		m["content-length"] = []string{strconv.FormatInt(r.ContentLength, 10)}
	}
	return m
}

// trimAll removes leading and trailing blanks and turns each inner run of
// spaces and tabs into one space. (The JavaScript SDK and botocore fold all
// whitespace; the Go SDK only spaces. They agree but for tabs inside a
// value, which none of them sends.)
func trimAll(v string) string {
	isBlank := func(c rune) bool { return c == ' ' || c == '\t' }
	return strings.Join(strings.FieldsFunc(v, isBlank), " ")
}

// signature returns HMAC-SHA256(signing key, string to sign).
func signature(secret string, s scope, amzDate, canonical string) []byte {
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := algorithm + "\n" + amzDate + "\n" + s.String() + "\n" + hex.EncodeToString(sum[:])
	return hmacSHA256(signingKey(secret, s), stringToSign)
}

// signingKey derives the key for one day, region and service.
func signingKey(secret string, s scope) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), s.Date)
	k = hmacSHA256(k, s.Region)
	k = hmacSHA256(k, s.Service)
	return hmacSHA256(k, scopeTerminator)
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// uriEncode percent-encodes every byte outside RFC 3986's unreserved set
// (A-Z a-z 0-9 - . _ ~) with uppercase hex; '/' too when encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
