package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	s := newSigner(t, testKID)
	keys := keySet{testKID: s.PublicKey()}
	minimal := Claims{ParticipantID: "p", StageARN: testStage, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	subSecond := testClaims()
	subSecond.IssuedAt, subSecond.ExpiresAt = now.Add(300*time.Millisecond), now.Add(MaxLifetime+900*time.Millisecond)
	longest := testClaims()
	longest.ParticipantID = strings.Repeat("a-_Z9", 12) + "abcd" // 64
	longest.UserID = strings.Repeat("é", 128)                    // 128 characters, 256 bytes
	longest.Attributes = map[string]string{"k": strings.Repeat("v", MaxAttributeBytes-1)}
	longest.ExpiresAt = longest.IssuedAt.Add(MaxLifetime)
	viewer := testClaims()
	viewer.Publish = false
	for name, tc := range map[string]struct{ in, want Claims }{
		"full":       {testClaims(), testClaims()},
		"minimal":    {minimal, func() Claims { c := minimal; c.StageID = "abcdABCDefgh"; return c }()},
		"sub-second": {subSecond, func() Claims { c := testClaims(); c.ExpiresAt = now.Add(MaxLifetime); return c }()},
		"at limits":  {longest, longest},
		"viewer":     {viewer, viewer},
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := s.Sign(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Verify(tok, keys, now.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("verified claims\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// TestTokenFormat pins the wire format to IVS's: header and claim names,
// types and the 96-byte signature.
func TestTokenFormat(t *testing.T) {
	s := newSigner(t, testKID)
	tok, err := s.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[2]) != 128 {
		t.Fatalf("token parts %d, signature %d characters; want 3 and 128", len(parts), len(parts[2]))
	}
	var header map[string]any
	decodeJSON(t, parts[0], &header)
	if want := (map[string]any{"alg": "ES384", "typ": "JWT", "kid": testKID}); !reflect.DeepEqual(header, want) {
		t.Errorf("header %v, want %v", header, want)
	}
	var claims map[string]any
	decodeJSON(t, parts[1], &claims)
	want := map[string]any{
		"exp": json.Number("1795651200"), "iat": json.Number("1795608000"), "jti": "abCDEf12GHIj", "user_id": "alice",
		"resource": testStage, "topic": "abcdABCDefgh",
		"events_url": "wss://global.events.live-video.net", "whip_url": "https://abc.global-bm.whip.live-video.net",
		"capabilities": map[string]any{"allow_publish": true, "allow_subscribe": true},
		"attributes":   map[string]any{"featured": "true"}, "version": "1.0",
	}
	if !reflect.DeepEqual(claims, want) {
		t.Errorf("claims\n%v\nwant\n%v", claims, want)
	}
}

func decodeJSON(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := decodeSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestSignRefusesBadClaims(t *testing.T) {
	s := newSigner(t, testKID)
	for name, change := range map[string]func(*Claims){
		"no jti":            func(c *Claims) { c.ParticipantID = "" },
		"jti with space":    func(c *Claims) { c.ParticipantID = "a b" },
		"jti with dot":      func(c *Claims) { c.ParticipantID = "a.b" },
		"jti non-ascii":     func(c *Claims) { c.ParticipantID = "é" },
		"jti 65":            func(c *Claims) { c.ParticipantID = strings.Repeat("a", 65) },
		"user_id 129":       func(c *Claims) { c.UserID = strings.Repeat("u", 129) },
		"no stage":          func(c *Claims) { c.StageARN = "" },
		"not a stage ARN":   func(c *Claims) { c.StageARN = "arn:aws:ivs:us-east-1:123456789012:channel/abc" },
		"stage id mismatch": func(c *Claims) { c.StageID = "other" },
		"no iat":            func(c *Claims) { c.IssuedAt = time.Time{} },
		"no exp":            func(c *Claims) { c.ExpiresAt = time.Time{} },
		"exp equals iat":    func(c *Claims) { c.ExpiresAt = c.IssuedAt },
		"exp before iat":    func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(-time.Hour) },
		"same second": func(c *Claims) {
			c.IssuedAt, c.ExpiresAt = now.Add(100*time.Millisecond), now.Add(500*time.Millisecond)
		},
		"14 days + 1s":    func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(MaxLifetime + time.Second) },
		"attributes 1025": func(c *Claims) { c.Attributes = map[string]string{"k": strings.Repeat("v", 1024)} },
		"attributes summed": func(c *Claims) {
			c.Attributes = map[string]string{"a": strings.Repeat("v", 600), "b": strings.Repeat("v", 600)}
		},
		"attribute key size": func(c *Claims) { c.Attributes = map[string]string{strings.Repeat("k", 1025): ""} },
	} {
		t.Run(name, func(t *testing.T) {
			c := testClaims()
			change(&c)
			tok, err := s.Sign(c)
			if !errors.Is(err, ErrInvalidClaims) || tok != "" {
				t.Fatalf("Sign = %q, %v; want ErrInvalidClaims", tok, err)
			}
		})
	}
}

func TestNewSigner(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for name, tc := range map[string]struct {
		key *ecdsa.PrivateKey
		kid string
	}{
		"nil key": {nil, "k"},
		"P-256":   {p256, "k"},
		"P-521":   {p521, "k"},
		"no kid":  {newKey(t), ""},
	} {
		if s, err := NewSigner(tc.key, tc.kid); err == nil || s != nil {
			t.Errorf("%s: NewSigner = %v, %v; want an error", name, s, err)
		}
	}
	key := newKey(t)
	s, err := NewSigner(key, "kid")
	if err != nil || s.KeyID() != "kid" || !s.PublicKey().Equal(&key.PublicKey) {
		t.Fatalf("NewSigner = %+v, %v", s, err)
	}
}

func TestPeek(t *testing.T) {
	s, _ := NewSigner(newKey(t), testKID)
	want := testClaims()
	want.WhipURL = "https://stage.example/whip"
	tok, err := s.Sign(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Peek(tok)
	if err != nil || got.WhipURL != want.WhipURL || got.ParticipantID != want.ParticipantID {
		t.Fatalf("Peek = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "a.b", "a.b.c", "e30.e30.e30"} {
		if _, err := Peek(bad); err == nil {
			t.Errorf("Peek(%q) accepted", bad)
		}
	}
}
