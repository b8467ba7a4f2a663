// Package tokenstore ties participant tokens to the store: the server's
// signing key, kept there so that every API server and worker of a fleet
// signs with the same key, and the verifier stages use, which trusts that
// key and the public keys imported with ImportPublicKey, and refuses
// participants DisconnectParticipant revoked.
//
// It knows neither the API server nor the stage: both import it.
package tokenstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
)

// signingKeyName is the store key of the server's token-signing key.
const signingKeyName = "token-signing-key"

// ServerKeyID is the kid of tokens the server issues. It never collides
// with an imported key, whose ids are 12 characters long.
func ServerKeyID(ns ivs.Namespace) string { return ns.ARN(ivs.TypePublicKey, "stagehand") }

// LoadSigner returns the server's P-384 token-signing key from the store,
// creating it on first use.
func LoadSigner(ctx context.Context, st *store.Store, ns ivs.Namespace) (*token.Signer, error) {
	key, err := st.Secrets.Get(ctx, signingKeyName)
	if errors.Is(err, store.ErrNotFound) {
		key, err = createKey(ctx, st)
	}
	if err != nil {
		return nil, err
	}
	priv, err := token.ParsePrivateKey([]byte(key))
	if err != nil {
		return nil, fmt.Errorf("stored key: %w", err)
	}
	return token.NewSigner(priv, ServerKeyID(ns))
}

// createKey stores a new key and returns the stored one.
func createKey(ctx context.Context, st *store.Store) (string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err := st.Secrets.Create(ctx, signingKeyName, pemKey); err != nil && !errors.Is(err, store.ErrExists) {
		return "", err
	}
	// Another server may have won the race: use whatever is stored.
	return st.Secrets.Get(ctx, signingKeyName)
}
