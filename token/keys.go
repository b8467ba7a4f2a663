package token

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ParsePublicKey reads the material ImportPublicKey takes: one PEM
// "PUBLIC KEY" block (SubjectPublicKeyInfo, as `openssl ec -pubout`
// writes) holding an ECDSA P-384 key, the only kind IVS accepts. Its
// errors are meant for the customer and never repeat key material.
func ParsePublicKey(material string) (*ecdsa.PublicKey, error) {
	// Pasted keys often come indented or with blank lines around them.
	blocks := pemBlocks([]byte(strings.TrimSpace(material)))
	if len(blocks) == 0 {
		return nil, errors.New("not PEM: want the text from -----BEGIN PUBLIC KEY----- to -----END PUBLIC KEY-----")
	}
	// A pasted private key is named as such whichever block it is in.
	for _, b := range blocks {
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return nil, errors.New("this is a private key: keep it secret and import only its public key (openssl ec -in " +
				"key.pem -pubout)")
		}
	}
	if len(blocks) > 1 {
		return nil, errors.New("holds more than one PEM block; give exactly one PUBLIC KEY")
	}
	if err := publicBlockType(blocks[0].Type); err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(blocks[0].Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a valid public key: %w", err)
	}
	return p384(pub)
}

// publicBlockType explains the PEM blocks people paste by mistake.
func publicBlockType(t string) error {
	switch {
	case t == "PUBLIC KEY":
		return nil
	case t == "RSA PUBLIC KEY":
		return errors.New("this is an RSA key; IVS accepts only ECDSA P-384 (secp384r1) keys")
	case t == "CERTIFICATE":
		return errors.New("this is a certificate; import the PUBLIC KEY itself")
	}
	return fmt.Errorf("PEM block is %s; want \"PUBLIC KEY\"", excerpt(t))
}

func pemBlocks(b []byte) []*pem.Block {
	var blocks []*pem.Block
	for {
		block, rest := pem.Decode(b)
		if block == nil {
			return blocks
		}
		blocks, b = append(blocks, block), rest
	}
}

// p384 refuses every public key but ECDSA on P-384, saying what it got.
func p384(pub any) (*ecdsa.PublicKey, error) {
	var got string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P384() {
			return k, nil
		}
		got = "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		got = "an RSA key"
	case ed25519.PublicKey:
		got = "an Ed25519 key"
	case *ecdh.PublicKey:
		got = "an X25519 key"
	default:
		got = fmt.Sprintf("a %T", pub)
	}
	return nil, fmt.Errorf("public key is %s; IVS accepts only ECDSA P-384 (secp384r1) keys", got)
}

// Fingerprint identifies a public key the way IVS shows it: the MD5 of
// its DER SubjectPublicKeyInfo as 16 colon-separated lowercase hex octets
// (the MD5 is for display and duplicate detection, not for security).
// It is "" for a key that cannot be encoded.
func Fingerprint(pub *ecdsa.PublicKey) string {
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := md5.Sum(der)
	var b strings.Builder
	for i, octet := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02x", octet)
	}
	return b.String()
}

// ParsePrivateKey reads a P-384 private key from PEM: PKCS#8 ("PRIVATE
// KEY") or SEC1 ("EC PRIVATE KEY"). An "EC PARAMETERS" block before the
// key, which `openssl ecparam -genkey` writes unless told -noout, is
// skipped.
func ParsePrivateKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode(pemBytes)
	for block != nil && block.Type == "EC PARAMETERS" {
		block, rest = pem.Decode(rest)
	}
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("the private key is encrypted; store it unencrypted (openssl pkcs8 -topk8 -nocrypt)")
	default:
		return nil, fmt.Errorf("PEM block is %s; want \"PRIVATE KEY\" or \"EC PRIVATE KEY\"", excerpt(block.Type))
	}
	if err != nil {
		return nil, fmt.Errorf("not a valid private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P384() {
		return nil, errors.New("not an ECDSA P-384 (secp384r1) private key")
	}
	return ec, nil
}

// LoadOrCreateKey returns the P-384 private key stored at path (PEM,
// PKCS#8 or SEC1). When there is no file it makes a new key and stores it
// there as PKCS#8, readable by its owner only (0600, in a directory made
// 0700), so the server signs with the same key after a restart and the
// tokens it issued stay valid.
func LoadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := loadKey(path)
	if errors.Is(err, os.ErrNotExist) {
		return createKey(path)
	}
	return key, err
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	key, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("token signing key %s: %w", path, err)
	}
	return key, nil
}

// createKey writes a new key to a temporary file and links it into place,
// so that no one ever reads a half-written key, and a server starting at
// the same moment that got there first keeps its key.
func createKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token signing key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("token signing key: encode: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	tmp, err := writeTemp(dir, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, path)
	if errors.Is(err, os.ErrExist) {
		return loadKey(path)
	}
	if err != nil {
		// Some file systems cannot link; a rename is as atomic, though it
		// would replace a key created in the meantime.
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	return key, nil
}

// writeTemp writes b to a new file in dir, mode 0600, and syncs it.
func writeTemp(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".token-key-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
