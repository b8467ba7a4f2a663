package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const goodHeader = `{"alg":"ES384","typ":"JWT","kid":"` + testKID + `"}`

// payloadJSON is a valid claim set with fields replaced or, given nil,
// removed.
func payloadJSON(t testing.TB, changes map[string]any) string {
	t.Helper()
	m := map[string]any{
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "cust_1", "user_id": "bob",
		"resource": testStage, "topic": "abcdABCDefgh", "events_url": "wss://e", "whip_url": "https://w",
		"capabilities": map[string]any{"allow_publish": true, "allow_subscribe": false},
		"attributes":   map[string]any{"a": "b"}, "version": "1.0",
	}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := jsonMarshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hmacToken is the algorithm-confusion attack: an HMAC token whose secret
// is the verifier's public key, which a verifier that lets the header pick
// the algorithm would accept.
func hmacToken(alg string, secret []byte, payload string) string {
	input := segment(`{"alg":"`+alg+`","typ":"JWT","kid":"`+testKID+`"}`) + "." + segment(payload)
	h := sha512.New384
	if alg == "HS256" {
		h = sha256.New
	}
	mac := hmac.New(h, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifyRefuses(t *testing.T) {
	key := newKey(t)
	keys := keySet{testKID: &key.PublicKey}
	sign := func(changes map[string]any) string { return signRaw(t, key, goodHeader, payloadJSON(t, changes)) }
	good := sign(nil)
	parts := strings.Split(good, ".")
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	flipped := []byte(parts[2])
	flipped[10] ^= 'A' ^ 'B'
	if flipped[10] == parts[2][10] || !isBase64URL(flipped[10]) {
		flipped[10] = 'A'
	}
	zeroSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 96))
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	cases := []struct {
		name string
		tok  string
		want error
		keys Keys
	}{
		{name: "empty", tok: "", want: ErrMalformed},
		{name: "garbage", tok: "not a token", want: ErrMalformed},
		{name: "two parts", tok: parts[0] + "." + parts[1], want: ErrMalformed},
		{name: "four parts", tok: good + "." + parts[2], want: ErrMalformed},
		{name: "padding", tok: good + "==", want: ErrMalformed},
		{name: "standard base64", tok: parts[0] + "." + parts[1] + "+/." + parts[2], want: ErrMalformed},
		{name: "line break", tok: parts[0] + "." + parts[1] + "." + parts[2][:64] + "\n" + parts[2][64:], want: ErrMalformed},
		{name: "bad base64 length", tok: parts[0] + "." + parts[1] + "." + parts[2] + "A", want: ErrMalformed},
		{name: "too long", tok: parts[0] + "." + strings.Repeat("A", maxTokenBytes) + "." + parts[2], want: ErrMalformed},
		{name: "header not JSON", tok: segment("alg=ES384") + "." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "header array", tok: segment(`["ES384"]`) + "." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "header null", tok: segment(`null`) + "." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "payload not JSON", tok: signRaw(t, key, goodHeader, "exp=1"), want: ErrMalformed},
		{name: "payload array", tok: signRaw(t, key, goodHeader, "[1]"), want: ErrMalformed},
		{name: "crit header", tok: signRaw(t, key, `{"alg":"ES384","kid":"`+testKID+`","crit":["b64"],"b64":false}`, payloadJSON(t, nil)), want: ErrMalformed},

		{name: "alg none", tok: segment(`{"alg":"none","typ":"JWT","kid":"`+testKID+`"}`) + "." + parts[1] + ".", want: ErrUnsupportedAlgorithm},
		{name: "alg none with signature", tok: segment(`{"alg":"none","kid":"`+testKID+`"}`) + "." + parts[1] + "." + parts[2], want: ErrUnsupportedAlgorithm},
		{name: "alg missing", tok: segment(`{"kid":"`+testKID+`"}`) + "." + parts[1] + "." + parts[2], want: ErrUnsupportedAlgorithm},
		{name: "alg lowercase", tok: signRaw(t, key, `{"alg":"es384","kid":"`+testKID+`"}`, payloadJSON(t, nil)), want: ErrUnsupportedAlgorithm},
		{name: "alg ES256", tok: signRaw(t, key, `{"alg":"ES256","kid":"`+testKID+`"}`, payloadJSON(t, nil)), want: ErrUnsupportedAlgorithm},
		{name: "alg not a string", tok: signRaw(t, key, `{"alg":["ES384"],"kid":"`+testKID+`"}`, payloadJSON(t, nil)), want: ErrUnsupportedAlgorithm},
		{name: "HS384 keyed with public DER", tok: hmacToken("HS384", pubDER, payloadJSON(t, nil)), want: ErrUnsupportedAlgorithm},
		{name: "HS384 keyed with public PEM", tok: hmacToken("HS384", pubPEM, payloadJSON(t, nil)), want: ErrUnsupportedAlgorithm},
		{name: "HS256 keyed with public PEM", tok: hmacToken("HS256", pubPEM, payloadJSON(t, nil)), want: ErrUnsupportedAlgorithm},
		{name: "RS384", tok: func() string {
			input := segment(`{"alg":"RS384","kid":"`+testKID+`"}`) + "." + segment(payloadJSON(t, nil))
			d := sha512.Sum384([]byte(input))
			sig, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, 0, d[:])
			return input + "." + base64.RawURLEncoding.EncodeToString(sig)
		}(), want: ErrUnsupportedAlgorithm},

		{name: "unknown kid", tok: signRaw(t, key, `{"alg":"ES384","kid":"arn:aws:ivs:us-east-1:123456789012:public-key/other"}`, payloadJSON(t, nil)), want: ErrUnknownKey},
		{name: "no kid", tok: signRaw(t, key, `{"alg":"ES384","typ":"JWT"}`, payloadJSON(t, nil)), want: ErrUnknownKey},
		{name: "empty kid", tok: signRaw(t, key, `{"alg":"ES384","kid":""}`, payloadJSON(t, nil)), want: ErrUnknownKey},
		{name: "kid not a string", tok: signRaw(t, key, `{"alg":"ES384","kid":7}`, payloadJSON(t, nil)), want: ErrUnknownKey},
		{name: "nil Keys", tok: good, keys: nil, want: ErrUnknownKey},
		{name: "Keys gives nil", tok: good, keys: keySet{testKID: nil}, want: ErrUnknownKey},
		{name: "Keys gives P-256", tok: good, keys: keySet{testKID: &p256.PublicKey}, want: ErrUnknownKey},

		{name: "tampered payload", tok: parts[0] + "." + segment(payloadJSON(t, map[string]any{"jti": "evil"})) + "." + parts[2], want: ErrBadSignature},
		{name: "tampered capabilities", tok: parts[0] + "." + segment(payloadJSON(t, map[string]any{"capabilities": map[string]bool{"allow_publish": true, "allow_subscribe": true}})) + "." + parts[2], want: ErrBadSignature},
		{name: "tampered header", tok: segment(`{"alg":"ES384","typ":"JWS","kid":"`+testKID+`"}`) + "." + parts[1] + "." + parts[2], want: ErrBadSignature},
		{name: "tampered signature", tok: parts[0] + "." + parts[1] + "." + string(flipped), want: ErrBadSignature},
		{name: "signature of zeros", tok: zeroSig, want: ErrBadSignature},
		{name: "no signature", tok: parts[0] + "." + parts[1] + ".", want: ErrBadSignature},
		{name: "short signature", tok: parts[0] + "." + parts[1] + "." + parts[2][:64], want: ErrBadSignature},
		{name: "DER signature", tok: parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 103)), want: ErrBadSignature},
		{name: "other key, same kid", tok: signRaw(t, newKey(t), goodHeader, payloadJSON(t, nil)), want: ErrBadSignature},
		{name: "other key via Signer", tok: func() string {
			tok, _ := newSigner(t, testKID).Sign(testClaims())
			return tok
		}(), want: ErrBadSignature},

		{name: "expired exactly now", tok: sign(map[string]any{"iat": now.Add(-time.Hour).Unix(), "exp": now.Unix()}), want: ErrExpired},
		{name: "expired long ago", tok: sign(map[string]any{"iat": int64(1), "exp": int64(2)}), want: ErrExpired},
		{name: "iat 61s ahead", tok: sign(map[string]any{"iat": now.Add(61 * time.Second).Unix(), "exp": now.Add(time.Hour).Unix()}), want: ErrNotYetValid},

		{name: "no jti", tok: sign(map[string]any{"jti": nil}), want: ErrInvalidClaims},
		{name: "null jti", tok: signRaw(t, key, goodHeader, strings.Replace(payloadJSON(t, nil), `"cust_1"`, "null", 1)), want: ErrInvalidClaims},
		{name: "no resource", tok: sign(map[string]any{"resource": nil}), want: ErrInvalidClaims},
		{name: "no capabilities", tok: sign(map[string]any{"capabilities": nil}), want: ErrInvalidClaims},
		{name: "no exp", tok: sign(map[string]any{"exp": nil}), want: ErrInvalidClaims},
		{name: "no iat", tok: sign(map[string]any{"iat": nil}), want: ErrInvalidClaims},
		{name: "no version", tok: sign(map[string]any{"version": nil}), want: ErrInvalidClaims},
		{name: "version 2.0", tok: sign(map[string]any{"version": "2.0"}), want: ErrInvalidClaims},
		{name: "version as number", tok: sign(map[string]any{"version": 1.0}), want: ErrInvalidClaims},
		{name: "JTI in capitals", tok: sign(map[string]any{"jti": nil, "JTI": "cust_1"}), want: ErrInvalidClaims},
		{name: "jti with dot", tok: sign(map[string]any{"jti": "a.b"}), want: ErrInvalidClaims},
		{name: "jti 65", tok: sign(map[string]any{"jti": strings.Repeat("j", 65)}), want: ErrInvalidClaims},
		{name: "jti number", tok: sign(map[string]any{"jti": 12}), want: ErrInvalidClaims},
		{name: "user_id 129", tok: sign(map[string]any{"user_id": strings.Repeat("u", 129)}), want: ErrInvalidClaims},
		{name: "resource not a stage", tok: sign(map[string]any{"resource": "arn:aws:ivs:us-east-1:123456789012:channel/abc"}), want: ErrInvalidClaims},
		{name: "topic of another stage", tok: sign(map[string]any{"topic": "otherStage12"}), want: ErrInvalidClaims},
		{name: "14 days + 1s", tok: sign(map[string]any{"exp": now.Add(MaxLifetime + time.Second).Unix()}), want: ErrInvalidClaims},
		{name: "exp before iat", tok: sign(map[string]any{"iat": now.Unix(), "exp": now.Add(-time.Second).Unix()}), want: ErrInvalidClaims},
		{name: "exp string", tok: sign(map[string]any{"exp": fmt.Sprint(now.Add(time.Hour).Unix())}), want: ErrInvalidClaims},
		{name: "exp bool", tok: sign(map[string]any{"exp": true}), want: ErrInvalidClaims},
		{name: "exp huge", tok: sign(map[string]any{"exp": 1e300}), want: ErrInvalidClaims},
		{name: "iat far past", tok: sign(map[string]any{"iat": int64(-1 << 62)}), want: ErrInvalidClaims},
		{name: "capabilities list", tok: sign(map[string]any{"capabilities": []string{"PUBLISH"}}), want: ErrInvalidClaims},
		{name: "capability string", tok: sign(map[string]any{"capabilities": map[string]any{"allow_publish": "true"}}), want: ErrInvalidClaims},
		{name: "attributes 1025", tok: sign(map[string]any{"attributes": map[string]string{"k": strings.Repeat("v", 1024)}}), want: ErrInvalidClaims},
		{name: "attribute number", tok: sign(map[string]any{"attributes": map[string]any{"n": 1}}), want: ErrInvalidClaims},
		{name: "attributes list", tok: sign(map[string]any{"attributes": []string{"a"}}), want: ErrInvalidClaims},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := tc.keys
			if keys == nil && tc.name != "nil Keys" {
				keys = keySet{testKID: &key.PublicKey}
			}
			c, err := Verify(tc.tok, keys, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !reflect.DeepEqual(c, Claims{}) {
				t.Errorf("claims %+v returned with the error", c)
			}
			checkMessage(t, err, tc.tok)
		})
	}
	// The tokens above differ from good only where each case says.
	if _, err := Verify(good, keys, now); err != nil {
		t.Fatalf("untampered token: %v", err)
	}
}

// checkMessage: errors say more than their sentinel, stay short, and never
// repeat the token.
func checkMessage(t *testing.T, err error, tok string) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 300 {
		t.Errorf("error is %d characters: %s", len(msg), msg)
	}
	if len(tok) > 40 && strings.Contains(msg, tok) {
		t.Errorf("error repeats the token: %s", msg)
	}
	for _, s := range sentinels {
		if msg == s.Error() {
			t.Errorf("error %q says no more than its sentinel", msg)
		}
	}
}

var sentinels = []error{ErrMalformed, ErrUnsupportedAlgorithm, ErrUnknownKey, ErrBadSignature, ErrExpired, ErrNotYetValid, ErrInvalidClaims}

func TestVerifyAccepts(t *testing.T) {
	key := newKey(t)
	keys := keySet{testKID: &key.PublicKey}
	for _, tc := range []struct {
		name    string
		header  string
		changes map[string]any
		now     time.Time
		check   func(Claims) bool
	}{
		{name: "iat 60s ahead", changes: map[string]any{"iat": now.Add(time.Minute).Unix()}},
		{name: "exp one second away", changes: map[string]any{"exp": now.Add(time.Second).Unix(), "iat": now.Add(-time.Hour).Unix()}},
		{name: "exactly 14 days", changes: map[string]any{"exp": now.Add(MaxLifetime).Unix()}},
		{name: "fractional times", changes: map[string]any{"iat": float64(now.Unix()) + 0.5, "exp": float64(now.Add(time.Hour).Unix()) + 0.75},
			check: func(c Claims) bool { return c.IssuedAt.Equal(now) && c.ExpiresAt.Equal(now.Add(time.Hour)) }},
		{name: "exponent times", changes: map[string]any{"iat": json1e(now.Unix()), "exp": json1e(now.Add(time.Hour).Unix())},
			check: func(c Claims) bool { return c.IssuedAt.Equal(now) }},
		{name: "no topic", changes: map[string]any{"topic": nil}, check: func(c Claims) bool { return c.StageID == "abcdABCDefgh" }},
		{name: "no optional claims", changes: map[string]any{"user_id": nil, "attributes": nil, "events_url": nil, "whip_url": nil, "topic": nil},
			check: func(c Claims) bool { return c.UserID == "" && c.Attributes == nil }},
		{name: "empty capabilities", changes: map[string]any{"capabilities": map[string]any{}}, check: func(c Claims) bool { return !c.Publish && !c.Subscribe }},
		{name: "extra claims", changes: map[string]any{"sub": "x", "nbf": "whenever", "custom": []int{1}}},
		{name: "no typ", header: `{"alg":"ES384","kid":"` + testKID + `"}`},
		{name: "extra header fields", header: `{"alg":"ES384","kid":"` + testKID + `","x5u":"https://evil"}`},
		{name: "attributes at 1 KB", changes: map[string]any{"attributes": map[string]string{"k": strings.Repeat("v", 1023)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := tc.header
			if header == "" {
				header = goodHeader
			}
			c, err := Verify(signRaw(t, key, header, payloadJSON(t, tc.changes)), keys, now)
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil && !tc.check(c) {
				t.Fatalf("claims %+v", c)
			}
		})
	}
}

// json1e writes n in exponent form, as some JSON encoders do.
type json1e int64

func (n json1e) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%.9e", float64(n))), nil
}
