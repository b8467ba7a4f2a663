package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
)

// maxTokenBytes bounds what Verify reads. The largest token IVS's limits
// allow (1 KB of attributes, every byte escaped) is well under it.
const maxTokenBytes = 16 << 10

// Keys finds the public keys a verifier trusts: the server's own and
// those imported with ImportPublicKey and not deleted since.
type Keys interface {
	// Key returns the P-384 public key that kid names, or false when kid
	// names no trusted key.
	Key(kid string) (*ecdsa.PublicKey, bool)
}

// Verify checks that tok is an ES384 JWT signed by the key its kid names
// in keys, that its claims keep IVS's rules, and that it is valid at now.
// On failure the claims are zero and the error wraps one of the Err
// sentinels, saying in plain words what is wrong without repeating the
// token.
//
// Verify only ever checks ECDSA P-384 signatures: the header's alg must
// say ES384, so "none", HMAC and RSA tokens are refused before any key is
// used. Claims it does not know are ignored.
func Verify(tok string, keys Keys, now time.Time) (Claims, error) {
	c, err := verify(tok, keys, now)
	if err != nil {
		return Claims{}, err
	}
	return c, nil
}

func verify(tok string, keys Keys, now time.Time) (Claims, error) {
	seg, err := split(tok)
	if err != nil {
		return Claims{}, err
	}
	kid, err := keyID(seg.header)
	if err != nil {
		return Claims{}, err
	}
	pub, err := lookup(keys, kid)
	if err != nil {
		return Claims{}, err
	}
	if err := checkSignature(pub, kid, seg.signed, seg.sig); err != nil {
		return Claims{}, err
	}
	// Only now, with the signature checked, is the payload worth reading.
	c, err := parseClaims(seg.payload)
	if err != nil {
		return Claims{}, err
	}
	if err := c.validate(); err != nil {
		return Claims{}, err
	}
	return c, checkTime(c, now)
}

// segments are a compact JWS's three parts, decoded, and the text its
// signature covers.
type segments struct {
	header, payload, sig []byte
	signed               string
}

func split(tok string) (segments, error) {
	if len(tok) > maxTokenBytes {
		return segments{}, malformed("it is %d bytes long; at most %d are accepted", len(tok), maxTokenBytes)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return segments{}, malformed("a JWT has 3 parts separated by dots; this has %d", len(parts))
	}
	var dec [3][]byte
	for i, name := range []string{"header", "payload", "signature"} {
		b, err := decodeSegment(parts[i])
		if err != nil {
			return segments{}, malformed("the %s is not base64url: %v", name, err)
		}
		dec[i] = b
	}
	return segments{header: dec[0], payload: dec[1], sig: dec[2], signed: parts[0] + "." + parts[1]}, nil
}

// decodeSegment decodes unpadded base64url, refusing the line breaks and
// padding Go's decoder would otherwise let through, so that each token
// has one spelling.
func decodeSegment(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if !isBase64URL(s[i]) {
			return nil, fmt.Errorf("character %d is %q", i+1, s[i])
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

func isBase64URL(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// keyID reads the header: alg must be ES384, and kid names the key.
func keyID(raw []byte) (string, error) {
	h, ok := object(raw)
	if !ok {
		return "", malformed("the header is not a JSON object")
	}
	a, ok := str(h["alg"])
	if !ok {
		return "", fmt.Errorf("%w: the header has no alg; participant tokens use \"ES384\"", ErrUnsupportedAlgorithm)
	}
	if a != alg {
		return "", fmt.Errorf("%w: alg is %s; participant tokens use \"ES384\"", ErrUnsupportedAlgorithm, excerpt(a))
	}
	// RFC 7515 4.1.11: extensions marked critical must be understood, and
	// none are.
	if _, ok := h["crit"]; ok {
		return "", malformed("the header lists critical extensions (crit), which are not supported")
	}
	kid, ok := str(h["kid"])
	if !ok || kid == "" {
		return "", fmt.Errorf("%w: the header has no kid naming the signing key", ErrUnknownKey)
	}
	return kid, nil
}

func lookup(keys Keys, kid string) (*ecdsa.PublicKey, error) {
	var pub *ecdsa.PublicKey
	ok := false
	if keys != nil {
		pub, ok = keys.Key(kid)
	}
	if !ok || pub == nil {
		return nil, fmt.Errorf("%w: no public key %s is imported", ErrUnknownKey, excerpt(kid))
	}
	if pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("%w: key %s is not a P-384 key", ErrUnknownKey, excerpt(kid))
	}
	return pub, nil
}

func checkSignature(pub *ecdsa.PublicKey, kid, signed string, sig []byte) error {
	if len(sig) != 2*coordSize {
		return fmt.Errorf("%w: it is %d bytes; an ES384 signature is r||s, %d bytes (DER signatures, as openssl writes "+
			"them, must be converted)",
			ErrBadSignature, len(sig), 2*coordSize)
	}
	digest := sha512.Sum384([]byte(signed))
	r := new(big.Int).SetBytes(sig[:coordSize])
	s := new(big.Int).SetBytes(sig[coordSize:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return fmt.Errorf("%w: it was not made by key %s over this header and payload", ErrBadSignature, excerpt(kid))
	}
	return nil
}

func checkTime(c Claims, now time.Time) error {
	if !now.Before(c.ExpiresAt) {
		return fmt.Errorf("%w: exp was %s", ErrExpired, stamp(c.ExpiresAt))
	}
	if c.IssuedAt.Sub(now) > maxIssueSkew {
		return fmt.Errorf("%w: iat is %s, more than a minute ahead of this server's clock (%s)", ErrNotYetValid,
			stamp(c.IssuedAt), stamp(now))
	}
	return nil
}

// parseClaims reads the payload. Claims are looked up by their exact
// names (encoding/json would match struct fields case-insensitively), and
// a wrong type is reported by claim name.
func parseClaims(raw []byte) (Claims, error) {
	m, ok := object(raw)
	if !ok {
		return Claims{}, malformed("the payload is not a JSON object")
	}
	r := claimReader{m: m}
	c := Claims{
		ParticipantID: r.string("jti"), UserID: r.string("user_id"),
		StageARN: r.string("resource"), StageID: r.string("topic"),
		EventsURL: r.string("events_url"), WhipURL: r.string("whip_url"),
		IssuedAt: r.time("iat"), ExpiresAt: r.time("exp"),
		Attributes: r.attributes(),
	}
	c.Publish, c.Subscribe = r.capabilities()
	switch v := r.string("version"); {
	case v == "":
		r.fail("version is missing; want %q", Version)
	case v != Version:
		r.fail("version is %s; want %q", excerpt(v), Version)
	}
	if r.err != nil {
		return Claims{}, r.err
	}
	if c.StageID == "" {
		// topic repeats what resource says; a token without it is clear.
		c.StageID = stageID(c.StageARN)
	}
	return c, nil
}

// claimReader reads typed claims, keeping the first error. An absent
// claim and a null one read as the zero value; validate decides which
// claims are required.
type claimReader struct {
	m   map[string]json.RawMessage
	err error
}

func (r *claimReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = invalid(format, args...)
	}
}

// get is the claim's JSON, or nil when it is absent or null.
func (r *claimReader) get(name string) json.RawMessage {
	raw := r.m[name]
	if string(raw) == "null" {
		return nil
	}
	return raw
}

func (r *claimReader) string(name string) string {
	raw := r.get(name)
	if raw == nil {
		return ""
	}
	s, ok := str(raw)
	if !ok {
		r.fail("%s must be a string", name)
	}
	return s
}

// time reads a NumericDate (RFC 7519): seconds since 1970. IVS writes
// whole seconds; fractions from other JWT libraries are cut off.
func (r *claimReader) time(name string) time.Time {
	raw := r.get(name)
	if raw == nil {
		return time.Time{}
	}
	sec, ok := seconds(raw)
	if !ok {
		r.fail("%s must be a number of seconds since 1970", name)
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

func seconds(raw json.RawMessage) (int64, bool) {
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	// raw came from the JSON decoder and starts like a number, so it is one.
	n := json.Number(raw)
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil || math.Abs(f) >= 1<<62 {
		return 0, false
	}
	return int64(math.Floor(f)), true
}

func (r *claimReader) capabilities() (publish, subscribe bool) {
	raw := r.get("capabilities")
	if raw == nil {
		r.fail("capabilities is missing")
		return false, false
	}
	m, ok := object(raw)
	if !ok {
		r.fail(`capabilities must be an object {"allow_publish": bool, "allow_subscribe": bool}`)
		return false, false
	}
	publish, okP := boolean(m["allow_publish"])
	subscribe, okS := boolean(m["allow_subscribe"])
	if !okP || !okS {
		r.fail("capabilities.allow_publish and capabilities.allow_subscribe must be true or false")
	}
	return publish, subscribe
}

func (r *claimReader) attributes() map[string]string {
	raw := r.get("attributes")
	if raw == nil {
		return nil
	}
	var a map[string]string
	if raw[0] != '{' || json.Unmarshal(raw, &a) != nil {
		r.fail("attributes must be an object whose values are strings")
		return nil
	}
	if len(a) == 0 {
		return nil // Sign omits empty attributes; keep one spelling of none.
	}
	return a
}

// object decodes a JSON object, keeping each member's raw JSON.
func object(raw []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// str decodes a JSON string; unlike json.Unmarshal it refuses null.
func str(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// boolean decodes true or false; an absent member is false.
func boolean(raw json.RawMessage) (bool, bool) {
	switch string(raw) {
	case "", "false":
		return false, true
	case "true":
		return true, true
	}
	return false, false
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
