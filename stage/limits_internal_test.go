package stage

import (
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/stagesignal"
)

func testRoom(cfg Config) *room {
	cfg = cfg.withDefaults()
	return newRoom(&Server{cfg: cfg, log: slog.New(slog.DiscardHandler)}, "stage1", "arn:aws:ivs:r:1:stage/stage1")
}

// TestRevokedMidNegotiation: a participant DisconnectParticipant removed
// while its offer was negotiated (or anyone, once the stage was deleted)
// gets no slot.
func TestRevokedMidNegotiation(t *testing.T) {
	r := testRoom(Config{})
	release, err := r.reserve("alice", subscribePeer, "bob")
	if err != nil {
		t.Fatal(err)
	}
	release()
	r.revoke("alice")
	for _, c := range []struct {
		pid    string
		status int
	}{{"alice", http.StatusForbidden}, {"carol", 0}} {
		_, err := r.reserve(c.pid, subscribePeer, "bob")
		var re *refusal.Error
		if c.status == 0 && err != nil || c.status != 0 && (!errors.As(err, &re) || re.Status != c.status) {
			t.Errorf("reserve for %s after alice's revocation: %v; want status %d", c.pid, err, c.status)
		}
	}
	r.revoke(stagesignal.Everyone)
	var re *refusal.Error
	if _, err := r.reserve("dave", publishPeer, ""); !errors.As(err, &re) || re.Status != http.StatusNotFound {
		t.Errorf("reserve on a deleted stage: %v; want 404", err)
	}
}

// TestErrorEventLimits: the same error is let through once per interval,
// and at most MaxErrorEvents in all.
func TestErrorEventLimits(t *testing.T) {
	r := testRoom(Config{MaxErrorEvents: 3})
	got := 0
	for i := range 100 {
		code := "A"
		if i%2 == 1 {
			code = string(rune('B' + i%7)) // a few distinct errors
		}
		if r.allowError("p", "SUBSCRIBE_ERROR", code) {
			got++
		}
	}
	if got != 3 || r.errors["p"].suppressed != 97 {
		t.Errorf("%d error events let through of 100, %d suppressed; want 3 and 97", got, r.errors["p"].suppressed)
	}
	if !r.allowError("q", "SUBSCRIBE_ERROR", "A") || r.allowError("q", "SUBSCRIBE_ERROR", "A") {
		t.Errorf("another participant's first error is not let through, or its repeat is")
	}
}
