package tokenstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
)

var ns = ivs.Namespace{Region: "us-east-1", Account: "123456789012"}

// openStore starts an embedded NATS server and opens a store on it.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	_, js := testkit.JetStream(t)
	st, err := store.Open(t.Context(), js, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// claims let a participant publish on a stage for an hour.
func claims(stageARN, participantID string) token.Claims {
	now := time.Now().Truncate(time.Second)
	a, _ := ivs.ParseARN(stageARN)
	return token.Claims{ParticipantID: participantID, StageARN: stageARN, StageID: a.ID,
		Publish: true, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
}

func sign(t *testing.T, s *token.Signer, c token.Claims) string {
	t.Helper()
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLoadSigner: the key made on first use is the one every later load
// (another server of the fleet) returns.
func TestLoadSigner(t *testing.T) {
	st := openStore(t)
	first, err := LoadSigner(t.Context(), st, ns)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadSigner(t.Context(), st, ns)
	if err != nil {
		t.Fatal(err)
	}
	if !first.PublicKey().Equal(again.PublicKey()) || again.KeyID() != ServerKeyID(ns) {
		t.Fatalf("second load: kid %q, same key %v", again.KeyID(), first.PublicKey().Equal(again.PublicKey()))
	}
}

func TestVerifier(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	v, err := NewVerifier(ctx, st, ns)
	if err != nil {
		t.Fatal(err)
	}
	server, err := LoadSigner(ctx, st, ns)
	if err != nil {
		t.Fatal(err)
	}
	stageARN := ns.ARN(ivs.TypeStage, "abcdABCDefgh")
	issued := sign(t, server, claims(stageARN, "alice"))
	if c, err := v.Verify(ctx, issued); err != nil || c.ParticipantID != "alice" {
		t.Fatalf("server-issued token: %+v, %v", c, err)
	}
	customer := importKey(t, st, "keyABCDefgh1")
	self := sign(t, customer, claims(stageARN, "bob"))
	if _, err := v.Verify(ctx, self); err != nil {
		t.Fatalf("token of an imported key: %v", err)
	}
	other := ivs.Namespace{Region: "eu-west-1", Account: ns.Account}.ARN(ivs.TypeStage, "abcdABCDefgh")
	_, err = v.Verify(ctx, sign(t, server, claims(other, "carol")))
	if !errors.Is(err, ErrForeignStage) || !strings.HasSuffix(err.Error(), ", not a stage of this server") {
		t.Fatalf("token for another region's stage: %v", err)
	}
	if err := st.Revocations.Put(ctx, RevocationKey("abcdABCDefgh", "alice"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, issued); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked participant: %v", err)
	}
	if err := st.PublicKeys.Delete(ctx, "keyABCDefgh1"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, self); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("token of a deleted key: %v", err)
	}
}

// importKey stores a new public key as ImportPublicKey would and returns
// a signer that names it.
func importKey(t *testing.T, st *store.Store, id string) *token.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	arn := ns.ARN(ivs.TypePublicKey, id)
	material := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err := st.PublicKeys.Create(t.Context(), id, ivs.PublicKey{ARN: arn, PublicKeyMaterial: material}); err != nil {
		t.Fatal(err)
	}
	s, err := token.NewSigner(priv, arn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReservedParticipant: only the server's key signs the participant ids
// of its compositions; an imported key claiming one is refused.
func TestReservedParticipant(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	v, err := NewVerifier(ctx, st, ns)
	if err != nil {
		t.Fatal(err)
	}
	server, err := LoadSigner(ctx, st, ns)
	if err != nil {
		t.Fatal(err)
	}
	stageARN := ns.ARN(ivs.TypeStage, "abcdABCDefgh")
	id := ReservedParticipantPrefix + "abcdABCDefgh"
	if _, err := v.Verify(ctx, sign(t, server, claims(stageARN, id))); err != nil {
		t.Fatalf("the server's own composition token: %v", err)
	}
	customer := importKey(t, st, "keyABCDefgh1")
	if _, err := v.Verify(ctx, sign(t, customer, claims(stageARN, id))); !errors.Is(err, ErrReservedParticipant) {
		t.Fatalf("imported key claiming %s: %v", id, err)
	}
}
