package token

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzVerify feeds Verify arbitrary text. It must never panic, must say
// why it refuses in a short error wrapping one sentinel, and must accept
// nothing but the one token the trusted key signed.
func FuzzVerify(f *testing.F) {
	key := newKey(f)
	s, _ := NewSigner(key, testKID)
	good, err := s.Sign(testClaims())
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	for _, seed := range []string{
		good,
		good[:len(good)/2],
		good[:len(good)-1],
		parts[0] + "." + parts[1],
		parts[0] + "." + parts[1] + ".",
		"",
		"..",
		"a.b.c",
		"not a token",
		segment(`{"alg":"none"}`) + "." + parts[1] + ".",
		segment(`{"alg":"HS384","kid":"`+testKID+`"}`) + "." + parts[1] + "." + parts[2][:64],
		parts[0] + "." + segment(`{"jti":"x","resource":"r","iat":1,"exp":2,"capabilities":{},"version":"1.0"}`) + "." + parts[2],
		// Signed, but with claims Verify refuses.
		signRaw(f, key, goodHeader, `{"exp":1e400,"iat":-1,"capabilities":null,"attributes":{"a":1}}`),
		signRaw(f, key, goodHeader, `[]`),
	} {
		f.Add(seed)
	}
	keys := keySet{testKID: s.PublicKey()}
	signed := parts[0] + "." + parts[1]
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verify(tok, keys, now)
		if err == nil {
			// ECDSA signatures are malleable, so another signature could
			// verify, but only over the very header and payload signed.
			if i := strings.LastIndexByte(tok, '.'); i < 0 || tok[:i] != signed {
				t.Fatalf("Verify accepted a token the key never signed: %q", tok)
			}
			return
		}
		if !reflect.DeepEqual(c, Claims{}) {
			t.Fatalf("claims returned with error %v", err)
		}
		n := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 || len(err.Error()) > 400 {
			t.Fatalf("error %q wraps %d sentinels, is %d bytes", err, n, len(err.Error()))
		}
	})
}

// FuzzSignedClaims signs arbitrary header and payload JSON with the
// trusted key, to reach the claim parsing FuzzVerify's forgeries never
// get past the signature to. What Verify accepts must be claims Sign
// would issue, and must come back unchanged through Sign and Verify.
func FuzzSignedClaims(f *testing.F) {
	key := newKey(f)
	s, _ := NewSigner(key, testKID)
	keys := keySet{testKID: &key.PublicKey}
	f.Add(goodHeader, payloadJSON(f, nil))
	f.Add(goodHeader, payloadJSON(f, map[string]any{"topic": nil, "attributes": map[string]string{"é": "\u2028"}}))
	f.Add(goodHeader, payloadJSON(f, map[string]any{"exp": 1.5e9, "iat": -0.5}))
	f.Add(`{"alg":"ES384","kid":"`+testKID+`","crit":[]}`, `{}`)
	f.Add(`{"alg":"none"}`, `null`)
	f.Fuzz(func(t *testing.T, header, payload string) {
		c, err := Verify(signRaw(t, key, header, payload), keys, now)
		if err != nil {
			return
		}
		tok, err := s.Sign(c)
		if err != nil {
			t.Fatalf("Verify accepted claims Sign refuses: %v\n%+v", err, c)
		}
		again, err := Verify(tok, keys, now)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("claims changed through Sign and Verify: %v\n%+v\n%+v", err, c, again)
		}
	})
}

// FuzzParsePublicKey: no material panics, and what is accepted is a
// P-384 key with a fingerprint, which reads back the same from its own
// PEM.
func FuzzParsePublicKey(f *testing.F) {
	f.Add(publicPEM(f, &newKey(f).PublicKey))
	f.Add("-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE\n-----END PUBLIC KEY-----\n")
	f.Add("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
	f.Add("")
	f.Add("-----BEGIN PUBLIC KEY-----")
	f.Fuzz(func(t *testing.T, material string) {
		pub, err := ParsePublicKey(material)
		if err != nil {
			if pub != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		fp := Fingerprint(pub)
		if pub.Curve.Params().Name != "P-384" || len(fp) != 47 {
			t.Fatalf("accepted %s key, fingerprint %q", pub.Curve.Params().Name, fp)
		}
		again, err := ParsePublicKey(publicPEM(t, pub))
		if err != nil || !again.Equal(pub) {
			t.Fatalf("key does not read back: %v", err)
		}
	})
}
