package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// TestPublishReconnect: `stagehand publish` outlives the loss of the
// stage's node, saying so, and ends cleanly when interrupted; a
// DisconnectParticipant, which no reconnection can undo, ends it with an
// error.
func TestPublishReconnect(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "cli-reconnect")
	tok := env.Token(t, *st.Arn, "cli", nil)
	ctx, cancel := context.WithCancel(env.Ctx)
	defer cancel()
	out, errOut := &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runPublish(ctx, []string{"--token", *tok.Token, "--size", "320x180", "--ice-ip", "127.0.0.1"},
			out, errOut)
	}()
	testkit.WaitFor(t, 20*time.Second, 50*time.Millisecond,
		testkit.Until("publishing", func() bool { return strings.Contains(out.String(), "publishing as") }))
	env.RestartStage(t, 300*time.Millisecond)
	testkit.WaitFor(t, 30*time.Second, 50*time.Millisecond,
		testkit.Until("the reconnect line", func() bool { return strings.Contains(out.String(), "reconnected") }))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("publish after a reconnection and an interrupt = %v\n%s%s", err, out, errOut)
	}
	t.Logf("stdout:\n%s", out)

	// Disconnected for good: the reconnection is refused, publish fails.
	tok2 := env.Token(t, *st.Arn, "cli2", nil)
	out2 := &testkit.SyncBuffer{}
	done2 := make(chan error, 1)
	go func() {
		done2 <- runPublish(env.Ctx, []string{"--token", *tok2.Token, "--size", "320x180", "--ice-ip", "127.0.0.1"},
			out2, &testkit.SyncBuffer{})
	}()
	testkit.WaitFor(t, 20*time.Second, 50*time.Millisecond,
		testkit.Until("publishing", func() bool { return strings.Contains(out2.String(), "publishing as") }))
	if _, err := env.API.DisconnectParticipant(env.Ctx, &rt.DisconnectParticipantInput{StageArn: st.Arn,
		ParticipantId: tok2.ParticipantId, Reason: aws.String("bye")}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done2:
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("publish after DisconnectParticipant = %v, want the refused reconnection", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publish still runs after DisconnectParticipant")
	}
}
