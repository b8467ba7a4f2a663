package tokenstore

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
)

// Reasons a well-formed, validly signed token is still refused; test with
// errors.Is.
var (
	// ErrRevoked is a token whose participant DisconnectParticipant revoked.
	ErrRevoked = errors.New("participant was disconnected from this stage and may not join again")
	// ErrForeignStage is a token for a stage of another account or region.
	ErrForeignStage = errors.New("not a stage of this server")
	// ErrReservedParticipant is a token signed with an imported key that
	// claims a participant id reserved for the server's own participants.
	ErrReservedParticipant = errors.New("participant id is reserved for the server's own participants")
)

// ReservedParticipantPrefix starts the participant ids only the server's
// own key may sign: its composition workers' subscribers, which the stage
// hides from the participant list (stage.CompositionParticipantPrefix).
const ReservedParticipantPrefix = "composition-"

// RevocationKey is the store.Revocations key under which a participant
// DisconnectParticipant revoked is kept.
func RevocationKey(stageID, participantID string) string { return stageID + "." + participantID }

// Verifier checks participant tokens as a stage must before letting
// anyone in: signed by the server or by a public key imported with
// ImportPublicKey (and not deleted since), unexpired, and not revoked.
type Verifier struct {
	store  *store.Store
	ns     ivs.Namespace
	server *ecdsa.PublicKey
	kid    string
	now    func() time.Time
}

// NewVerifier reads the server's signing key from the store.
func NewVerifier(ctx context.Context, st *store.Store, ns ivs.Namespace) (*Verifier, error) {
	signer, err := LoadSigner(ctx, st, ns)
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	return &Verifier{store: st, ns: ns, server: signer.PublicKey(), kid: signer.KeyID(), now: time.Now}, nil
}

// Verify returns the token's claims, or why it may not be used.
func (v *Verifier) Verify(ctx context.Context, tok string) (token.Claims, error) {
	keys := &keyLookup{ctx: ctx, v: v}
	c, err := token.Verify(tok, keys, v.now())
	if err != nil {
		return c, err
	}
	if !keys.server && strings.HasPrefix(c.ParticipantID, ReservedParticipantPrefix) {
		return c, fmt.Errorf("jti %q: %w", c.ParticipantID, ErrReservedParticipant)
	}
	stage, err := ivs.ParseARN(c.StageARN)
	if err != nil || !v.ns.Owns(stage, ivs.TypeStage) {
		return c, fmt.Errorf("token is for %q, %w", c.StageARN, ErrForeignStage)
	}
	if _, err := v.store.Revocations.Get(ctx, RevocationKey(stage.ID, c.ParticipantID)); err == nil {
		return c, ErrRevoked
	} else if !errors.Is(err, store.ErrNotFound) {
		return c, err
	}
	return c, nil
}

type keyLookup struct {
	ctx    context.Context
	v      *Verifier
	server bool // the kid named the server's own key
}

// Key finds the public key a token's kid names.
func (k *keyLookup) Key(kid string) (*ecdsa.PublicKey, bool) {
	if kid == k.v.kid {
		k.server = true
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
