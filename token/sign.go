package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

const (
	alg = "ES384"
	// coordSize is the byte length of r and of s in an ES384 signature.
	coordSize = 48
)

// header is the JOSE header of every token this package signs.
type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// payload is the claim set as IVS spells it, in IVS's order.
type payload struct {
	Exp          int64             `json:"exp"`
	Iat          int64             `json:"iat"`
	Jti          string            `json:"jti"`
	UserID       string            `json:"user_id,omitempty"`
	Resource     string            `json:"resource"`
	Topic        string            `json:"topic"`
	EventsURL    string            `json:"events_url"`
	WhipURL      string            `json:"whip_url"`
	Capabilities capabilities      `json:"capabilities"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Version      string            `json:"version"`
}

type capabilities struct {
	AllowPublish   bool `json:"allow_publish"`
	AllowSubscribe bool `json:"allow_subscribe"`
}

// Signer issues participant tokens with one P-384 private key.
type Signer struct {
	key *ecdsa.PrivateKey
	kid string
}

// NewSigner returns a Signer that names its key keyID in token headers:
// for the server's own key an id of its choosing, for a customer's key the
// ARN of the public key they imported. Keys on curves other than P-384
// are refused, as IVS refuses them.
func NewSigner(key *ecdsa.PrivateKey, keyID string) (*Signer, error) {
	if key == nil || key.Curve != elliptic.P384() {
		return nil, errors.New("token signing key must be an ECDSA P-384 (secp384r1) private key")
	}
	if keyID == "" {
		return nil, errors.New("token signing key needs a key id for the kid header")
	}
	return &Signer{key: key, kid: keyID}, nil
}

// PublicKey is the key that verifies the signer's tokens.
func (s *Signer) PublicKey() *ecdsa.PublicKey { return &s.key.PublicKey }

// KeyID is the kid the signer puts in token headers.
func (s *Signer) KeyID() string { return s.kid }

// Sign checks c against IVS's rules and returns it as a compact JWT.
// Times are cut to whole seconds, as JWTs carry them; an empty StageID is
// taken from StageARN.
func (s *Signer) Sign(c Claims) (string, error) {
	c = normalize(c)
	if err := c.validate(); err != nil {
		return "", fmt.Errorf("sign participant token: %w", err)
	}
	h, err := json.Marshal(header{Alg: alg, Typ: "JWT", Kid: s.kid})
	if err != nil {
		return "", fmt.Errorf("sign participant token: %w", err)
	}
	p, err := json.Marshal(toPayload(c))
	if err != nil {
		return "", fmt.Errorf("sign participant token: %w", err)
	}
	input := encode(h) + "." + encode(p)
	sig, err := s.signature(input)
	if err != nil {
		return "", fmt.Errorf("sign participant token: %w", err)
	}
	return input + "." + encode(sig), nil
}

// signature is the JWS ES384 signature of input: r and s as fixed-size
// big-endian integers, not the DER that crypto/ecdsa and openssl produce.
func (s *Signer) signature(input string) ([]byte, error) {
	digest := sha512.Sum384([]byte(input))
	r, ss, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 2*coordSize)
	r.FillBytes(sig[:coordSize])
	ss.FillBytes(sig[coordSize:])
	return sig, nil
}

// normalize cuts times to the whole seconds the token will carry before
// validation, so that a token Sign accepts never fails Verify's checks
// (0.1s to 0.5s would otherwise become an exp equal to iat).
func normalize(c Claims) Claims {
	if !c.IssuedAt.IsZero() {
		c.IssuedAt = time.Unix(c.IssuedAt.Unix(), 0).UTC()
	}
	if !c.ExpiresAt.IsZero() {
		c.ExpiresAt = time.Unix(c.ExpiresAt.Unix(), 0).UTC()
	}
	if c.StageID == "" {
		c.StageID = stageID(c.StageARN)
	}
	return c
}

func toPayload(c Claims) payload {
	return payload{
		Exp: c.ExpiresAt.Unix(), Iat: c.IssuedAt.Unix(), Jti: c.ParticipantID, UserID: c.UserID,
		Resource: c.StageARN, Topic: c.StageID, EventsURL: c.EventsURL, WhipURL: c.WhipURL,
		Capabilities: capabilities{AllowPublish: c.Publish, AllowSubscribe: c.Subscribe},
		Attributes:   c.Attributes, Version: Version,
	}
}

func encode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
