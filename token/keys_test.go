package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func publicPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestParsePublicKey(t *testing.T) {
	key := newKey(t)
	good := publicPEM(t, &key.PublicKey)
	for name, in := range map[string]string{
		"plain":               good,
		"CRLF and whitespace": "\r\n  " + strings.ReplaceAll(good, "\n", "\r\n") + "\n\n",
		"explanatory text":    "my key for prod:\n" + good,
	} {
		pub, err := ParsePublicKey(in)
		if err != nil || !pub.Equal(&key.PublicKey) {
			t.Errorf("%s: ParsePublicKey = %v, %v", name, pub, err)
		}
	}

	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	sec1, _ := x509.MarshalECPrivateKey(key)
	privPKCS8 := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	privSEC1 := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "not PEM"},
		{"text", "hello", "not PEM"},
		{"bare base64", strings.Join(strings.Split(good, "\n")[1:3], ""), "not PEM"},
		{"PKCS#8 private key", privPKCS8, "private key"},
		{"SEC1 private key", privSEC1, "private key"},
		{"private key after public", good + privSEC1, "private key"},
		{"two public keys", good + good, "more than one"},
		{"P-256", publicPEM(t, &p256.PublicKey), "P-256"},
		{"P-521", publicPEM(t, &p521.PublicKey), "P-521"},
		{"RSA", publicPEM(t, &rsaKey.PublicKey), "RSA"},
		{"RSA PKCS#1", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})), "RSA"},
		{"Ed25519", publicPEM(t, edPub), "Ed25519"},
		{"certificate", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})), "certificate"},
		{"other block", string(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte("x")})), `"EC PARAMETERS"`},
		{"junk body", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})), "not a valid public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := ParsePublicKey(tc.in)
			if err == nil || pub != nil {
				t.Fatalf("ParsePublicKey = %v, %v; want an error", pub, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			// A pasted private key must not come back in the error.
			for _, line := range strings.Split(tc.in, "\n") {
				if len(line) > 20 && strings.Contains(err.Error(), line) {
					t.Errorf("error %q repeats the material", err)
				}
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	key := newKey(t)
	fp := Fingerprint(&key.PublicKey)
	if !regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){15}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not 16 colon-separated octets", fp)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := md5.Sum(der)
	if got := strings.ReplaceAll(fp, ":", ""); got != hex.EncodeToString(sum[:]) {
		t.Errorf("fingerprint %s is not the MD5 of the DER key %x", fp, sum)
	}
	if other := Fingerprint(&newKey(t).PublicKey); other == fp {
		t.Error("two keys share a fingerprint")
	}
	if Fingerprint(nil) != "" {
		t.Error("nil key has a fingerprint")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys")
	path := filepath.Join(dir, "token.pem")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Curve != elliptic.P384() {
		t.Fatalf("curve %s", k1.Curve.Params().Name)
	}
	assertMode(t, path, 0o600)
	assertMode(t, dir, 0o700)
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("key directory holds %d entries; want only the key", len(entries))
	}
	// The key signs tokens that still verify after the "restart".
	s1, _ := NewSigner(k1, "server")
	tok, err := s1.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(tok, keySet{"server": &k2.PublicKey}, now); err != nil {
		t.Fatal(err)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v; want %v", path, got, want)
	}
}

// TestLoadOrCreateKeyRace: servers starting together on a fresh path end
// up with the one key on disk.
func TestLoadOrCreateKeyRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.pem")
	keys := make([]*ecdsa.PrivateKey, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	onDisk, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if k == nil || !k.Equal(onDisk) {
			t.Errorf("caller %d got a key that is not the one stored", i)
		}
	}
}

func TestLoadOrCreateKeyFormats(t *testing.T) {
	key := newKey(t)
	sec1, _ := x509.MarshalECPrivateKey(key)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	params, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 132, 0, 34}) // secp384r1
	block := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256der, _ := x509.MarshalPKCS8PrivateKey(p256)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsader, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	for _, tc := range []struct{ name, file, wantErr string }{
		{"PKCS#8", block("PRIVATE KEY", pkcs8), ""},
		{"SEC1", block("EC PRIVATE KEY", sec1), ""},
		{"SEC1 after EC PARAMETERS", block("EC PARAMETERS", params) + block("EC PRIVATE KEY", sec1), ""},
		{"garbage", "this is not a key\n", "not a PEM private key"},
		{"empty", "", "not a PEM private key"},
		{"public key", publicPEM(t, &key.PublicKey), `"PUBLIC KEY"`},
		{"encrypted", block("ENCRYPTED PRIVATE KEY", []byte("x")), "encrypted"},
		{"corrupt PKCS#8", block("PRIVATE KEY", []byte("junk")), "not a valid private key"},
		{"P-256", block("PRIVATE KEY", p256der), "P-384"},
		{"RSA", block("PRIVATE KEY", rsader), "P-384"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadOrCreateKey(path)
			if tc.wantErr == "" {
				if err != nil || !got.Equal(key) {
					t.Fatalf("LoadOrCreateKey = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v; want one naming %s and saying %q", err, path, tc.wantErr)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.file {
				t.Error("a refused key file was changed")
			}
		})
	}
	if _, err := LoadOrCreateKey(t.TempDir()); err == nil {
		t.Error("a directory was read as a key")
	}
}
