package api

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
)

// ErrRevoked is a token whose participant DisconnectParticipant revoked.
var ErrRevoked = errors.New("participant was disconnected from this stage and may not join again")

// TokenVerifier checks participant tokens as a stage must before letting
// anyone in: signed by the server or by a public key imported with
// ImportPublicKey (and not deleted since), unexpired, and not revoked.
type TokenVerifier struct {
	store  *store.Store
	ns     ivs.Namespace
	server *ecdsa.PublicKey
	kid    string
	now    func() time.Time
}

// NewTokenVerifier reads the server's signing key from the store.
func NewTokenVerifier(ctx context.Context, st *store.Store, ns ivs.Namespace) (*TokenVerifier, error) {
	signer, err := loadSigner(ctx, st, ns)
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	return &TokenVerifier{store: st, ns: ns, server: signer.PublicKey(), kid: signer.KeyID(), now: time.Now}, nil
}

// Verify returns the token's claims, or why it may not be used.
func (v *TokenVerifier) Verify(ctx context.Context, tok string) (token.Claims, error) {
	c, err := token.Verify(tok, keyLookup{ctx, v}, v.now())
	if err != nil {
		return c, err
	}
	stage, err := ivs.ParseARN(c.StageARN)
	if err != nil || !v.ns.Owns(stage, ivs.TypeStage) {
		return c, fmt.Errorf("token is for %q, not a stage of this server", c.StageARN)
	}
	if _, err := v.store.Revocations.Get(ctx, stage.ID+"."+c.ParticipantID); err == nil {
		return c, ErrRevoked
	} else if !errors.Is(err, store.ErrNotFound) {
		return c, err
	}
	return c, nil
}

type keyLookup struct {
	ctx context.Context
	v   *TokenVerifier
}

// Key finds the public key a token's kid names.
func (k keyLookup) Key(kid string) (*ecdsa.PublicKey, bool) {
	if kid == k.v.kid {
		return k.v.server, true
	}
	a, err := ivs.ParseARN(kid)
	if err != nil || !k.v.ns.Owns(a, ivs.TypePublicKey) {
		return nil, false
	}
	pk, err := k.v.store.PublicKeys.Get(k.ctx, a.ID)
	if err != nil {
		return nil, false
	}
	pub, err := token.ParsePublicKey(pk.PublicKeyMaterial)
	if err != nil {
		return nil, false
	}
	return pub, true
}

// LoadSigner returns the server's token-signing key from the store,
// creating it on first use: composition workers sign their own
// subscribe tokens with it.
func LoadSigner(ctx context.Context, st *store.Store, ns ivs.Namespace) (*token.Signer, error) {
	return loadSigner(ctx, st, ns)
}
