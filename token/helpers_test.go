package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// keySet is the simplest Keys: a fixed map from kid to key.
type keySet map[string]*ecdsa.PublicKey

func (k keySet) Key(kid string) (*ecdsa.PublicKey, bool) {
	p, ok := k[kid]
	return p, ok
}

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	testKID   = "arn:aws:ivs:us-east-1:123456789012:public-key/abcdABC1efg2"
	testStage = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCDefgh"
)

func testClaims() Claims {
	return Claims{
		ParticipantID: "abCDEf12GHIj", UserID: "alice", StageARN: testStage, StageID: "abcdABCDefgh",
		EventsURL: "wss://global.events.live-video.net", WhipURL: "https://abc.global-bm.whip.live-video.net",
		Publish: true, Subscribe: true, Attributes: map[string]string{"featured": "true"},
		IssuedAt: now, ExpiresAt: now.Add(12 * time.Hour),
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSigner(t testing.TB, kid string) *Signer {
	t.Helper()
	s, err := NewSigner(newKey(t), kid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func segment(v string) string { return base64.RawURLEncoding.EncodeToString([]byte(v)) }

// signRaw signs any header and payload JSON with ES384, written apart from
// Signer so that tests can make tokens Sign would refuse.
func signRaw(t testing.TB, key *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	input := segment(header) + "." + segment(payload)
	digest := sha512.Sum384([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
