package stage_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// TestSubscriptionLimits: a participant subscribes to each publisher once
// (409 after), and to MaxSubscriptions publishers in all (429 after).
func TestSubscriptionLimits(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Stage: stage.Config{MaxSubscriptions: 1}})
	st := env.CreateStage(t, "limits")
	_, alice := publish(t, env, st, "alice")
	_, bob := publish(t, env, st, "bob")
	tok := env.Token(t, *st.Arn, "viewer", nil, types.ParticipantTokenCapabilitySubscribe)
	sub := func(pid string) error {
		s, err := client.Subscribe(env.Ctx, client.WHEPURL(*st.Endpoints.Whip, pid), *tok.Token, loopback, nil)
		if err == nil {
			t.Cleanup(func() { _ = s.Close(context.Background()) })
		}
		return err
	}
	if err := sub(*alice.ParticipantId); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pid    string
		status int
	}{{*alice.ParticipantId, http.StatusConflict}, {*bob.ParticipantId, http.StatusTooManyRequests}} {
		var se *client.StatusError
		if err := sub(c.pid); !errors.As(err, &se) || se.Status != c.status {
			t.Errorf("subscription to %s past the limit: %v; want %d", c.pid, err, c.status)
		}
	}
}

// TestEventSocketsEnd: an events socket closes (1008, with the reason)
// when its token expires and when its stage is deleted.
func TestEventSocketsEnd(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "sockets")
	short := selfSigned(t, env, st, time.Now().Add(2*time.Second))
	long := env.Token(t, *st.Arn, "watcher", nil)
	dial := func(tok string) *client.Events {
		ev, err := client.DialEvents(env.Ctx, *st.Endpoints.Events, tok)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ev.Close() })
		return ev
	}
	expiring, watching := dial(short), dial(*long.Token)
	if err := closedWith(expiring, "expired"); err != nil {
		t.Errorf("socket of an expiring token: %v", err)
	}
	if _, err := env.API.DeleteStage(env.Ctx, &ivsrealtime.DeleteStageInput{Arn: st.Arn}); err != nil {
		t.Fatal(err)
	}
	if err := closedWith(watching, "deleted"); err != nil {
		t.Errorf("socket on a deleted stage: %v", err)
	}
}

// closedWith reads ev until it closes, and checks it was closed 1008 for
// a reason mentioning why.
func closedWith(ev *client.Events, why string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, err := ev.Next(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, why) {
			return err
		}
		return nil
	}
}
