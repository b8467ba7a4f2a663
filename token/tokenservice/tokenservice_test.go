package tokenservice_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/token/tokenservice"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

var ns = ivs.Namespace{Region: "us-east-1", Account: "123456789012"}

// TestMint: over NATS, a live composition or recording gets a SUBSCRIBE
// token for a composition participant that lasts a day; an ended or
// unknown one gets none.
func TestMint(t *testing.T) {
	nc, js := testkit.JetStream(t)
	ctx := t.Context()
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := tokenstore.LoadSigner(ctx, st, ns)
	if err != nil {
		t.Fatal(err)
	}
	stage := ivs.Stage{ARN: ns.ARN(ivs.TypeStage, "st1"), ActiveSessionID: "se1",
		Endpoints: ivs.StageEndpoints{WHIP: "http://stage/whip", Events: "ws://stage/events"}}
	must(t, st.Stages.Put(ctx, "st1", stage))
	must(t, st.Compositions.Put(ctx, "live", ivs.Composition{StageARN: stage.ARN, State: ivs.CompositionActive}))
	must(t, st.Compositions.Put(ctx, "over", ivs.Composition{StageARN: stage.ARN, State: ivs.CompositionFailed}))
	must(t, st.Recordings.Put(ctx, "st1.se1.alice", ivs.ParticipantRecording{State: ivs.RecordingActive}))
	sub, err := tokenservice.Serve(nc, "t.tokens", tokenservice.Minter{Store: st, Signer: signer},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	c := tokenservice.Client{NC: nc, Subject: "t.tokens"}

	tok, err := c.CompositionToken(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := token.Peek(tok)
	if err != nil {
		t.Fatal(err)
	}
	if cl.ParticipantID != "composition-live" || !cl.Subscribe || cl.Publish || cl.StageARN != stage.ARN ||
		cl.WhipURL != stage.Endpoints.WHIP || cl.ExpiresAt.After(time.Now().Add(tokenservice.Lifetime)) {
		t.Errorf("composition token claims %+v", cl)
	}
	tok, err = c.RecordingToken(ctx, "st1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if cl, err := token.Peek(tok); err != nil || !strings.HasPrefix(cl.ParticipantID, "composition-rec-alice-") ||
		!cl.Subscribe || cl.Publish {
		t.Errorf("recording token claims %+v (%v)", cl, err)
	}
	for name, ask := range map[string]func() (string, error){
		"ended composition":      func() (string, error) { return c.CompositionToken(ctx, "over") },
		"unknown composition":    func() (string, error) { return c.CompositionToken(ctx, "nope") },
		"unrecorded participant": func() (string, error) { return c.RecordingToken(ctx, "st1", "bob") },
		"empty request":          func() (string, error) { return c.CompositionToken(ctx, "") },
	} {
		if tok, err := ask(); !errors.Is(err, tokenservice.ErrRefused) {
			t.Errorf("%s: token %.20q, error %v; want refused", name, tok, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
