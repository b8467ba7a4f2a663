package token

import (
	"crypto/md5"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// openssl runs the openssl command line, skipping the test where there is
// none.
func openssl(t *testing.T) func(args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	return func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("openssl", args...).Output()
		if err != nil {
			msg := err.Error()
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				msg += ": " + string(ee.Stderr)
			}
			t.Fatalf("openssl %s: %s", strings.Join(args, " "), msg)
		}
		return out
	}
}

// TestOpenSSLSelfSignedToken signs a token the way IVS tells customers
// to, with a key made by openssl, and checks that Verify accepts it with
// the public key ImportPublicKey would be given.
func TestOpenSSLSelfSignedToken(t *testing.T) {
	run := openssl(t)
	dir := t.TempDir()
	priv := filepath.Join(dir, "priv.pem")
	run("ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", priv)
	pubPEM := run("ec", "-in", priv, "-pubout")
	pubDER := run("ec", "-in", priv, "-pubout", "-outform", "DER")

	pub, err := ParsePublicKey(string(pubPEM))
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(pubDER)
	if got, want := Fingerprint(pub), colonHex(sum[:]); got != want {
		t.Errorf("Fingerprint = %s; MD5 of openssl's DER is %s", got, want)
	}

	issued := time.Now().Truncate(time.Second)
	header := segment(`{"alg":"ES384","typ":"JWT","kid":"` + testKID + `"}`)
	payload := segment(fmt.Sprintf(`{"exp":%d,"iat":%d,"jti":"cust_1","user_id":"carol","resource":%q,"topic":"abcdABCDefgh",`+
		`"events_url":"wss://e","whip_url":"https://w","capabilities":{"allow_publish":true,"allow_subscribe":false},`+
		`"attributes":{"a":"b"},"version":"1.0"}`, issued.Add(time.Hour).Unix(), issued.Unix(), testStage))
	input := header + "." + payload
	in := filepath.Join(dir, "input")
	if err := os.WriteFile(in, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	der := run("dgst", "-sha384", "-sign", priv, in)
	tok := input + "." + base64.RawURLEncoding.EncodeToString(rawSignature(t, der))

	c, err := Verify(tok, keySet{testKID: pub}, issued)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{ParticipantID: "cust_1", UserID: "carol", StageARN: testStage, StageID: "abcdABCDefgh",
		EventsURL: "wss://e", WhipURL: "https://w", Publish: true, Attributes: map[string]string{"a": "b"},
		IssuedAt: issued.UTC(), ExpiresAt: issued.Add(time.Hour).UTC()}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("claims\n%+v\nwant\n%+v", c, want)
	}
	// The DER signature as openssl wrote it is not a JWS signature.
	if _, err := Verify(input+"."+base64.RawURLEncoding.EncodeToString(der), keySet{testKID: pub}, issued); err == nil {
		t.Error("a DER signature verified")
	}
}

// TestOpenSSLVerifiesSigner goes the other way: openssl checks a token
// Sign made with a key openssl generated, whichever PEM form it is in.
func TestOpenSSLVerifiesSigner(t *testing.T) {
	run := openssl(t)
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"SEC1 with EC PARAMETERS": {"ecparam", "-name", "secp384r1", "-genkey"},
		"PKCS#8":                  {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"},
	} {
		t.Run(name, func(t *testing.T) {
			priv := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".pem")
			if err := os.WriteFile(priv, run(args...), 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := LoadOrCreateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := NewSigner(key, testKID)
			tok, err := s.Sign(testClaims())
			if err != nil {
				t.Fatal(err)
			}
			i := strings.LastIndexByte(tok, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
			der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:48]), new(big.Int).SetBytes(sig[48:])})
			if err != nil {
				t.Fatal(err)
			}
			in, sigFile, pub := filepath.Join(dir, "in"), filepath.Join(dir, "sig"), filepath.Join(dir, "pub.pem")
			for _, f := range []struct {
				path string
				data []byte
			}{{in, []byte(tok[:i])}, {sigFile, der}, {pub, run("pkey", "-in", priv, "-pubout")}} {
				if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if out := run("dgst", "-sha384", "-verify", pub, "-signature", sigFile, in); !strings.Contains(string(out), "Verified OK") {
				t.Fatalf("openssl: %s", out)
			}
		})
	}
}

// rawSignature turns openssl's DER ECDSA signature into JWS's r||s.
func rawSignature(t *testing.T, der []byte) []byte {
	t.Helper()
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) > 0 {
		t.Fatalf("openssl signature is not DER: %v", err)
	}
	raw := make([]byte, 96)
	sig.R.FillBytes(raw[:48])
	sig.S.FillBytes(raw[48:])
	return raw
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i := range b {
		parts[i] = hex.EncodeToString(b[i : i+1])
	}
	return strings.Join(parts, ":")
}
