// Limits per participant. A token is a participant; what one participant
// may hold on a stage is bounded, and checked before any PeerConnection is
// made, so that a token replayed many times costs the server a refusal,
// not a peer connection each (docs/security/stage.md).

package stage

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/stagesignal"
)

// pending counts the peers a participant is negotiating: by publisher id
// for subscriptions, "" for its publication.
type pending map[string]int

// reserve books a slot for a peer of kind that participant pid is about to
// negotiate (to publisher target when subscribing), or refuses it when the
// participant's live and pending peers are at their limit. release gives
// the slot back once the peer joined or failed.
func (r *room) reserve(pid string, kind peerKind, target string) (release func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.revokedLocked(pid); err != nil {
		return nil, err
	}
	if err := r.checkLimitsLocked(pid, kind, target); err != nil {
		return nil, err
	}
	if kind == publishPeer {
		target = ""
	}
	if r.pending[pid] == nil {
		r.pending[pid] = pending{}
	}
	r.pending[pid][target]++
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.pending[pid][target]--; r.pending[pid][target] <= 0 {
			delete(r.pending[pid], target)
		}
		if len(r.pending[pid]) == 0 {
			delete(r.pending, pid)
		}
	}, nil
}

func (r *room) checkLimitsLocked(pid string, kind peerKind, target string) error {
	if isRelay(pid) {
		return nil // a node relaying the stage: one subscription a publisher, at most 12
	}
	part := r.participants[pid]
	if r.sessionID == "" {
		part = nil // participants of an ended session are forgotten
	}
	if kind == publishPeer {
		if r.pending[pid][""] > 0 || part != nil && part.pub != nil {
			return refusal.New(http.StatusConflict,
				"this participant is already publishing; DELETE its WHIP session first")
		}
		return nil
	}
	toTarget, all := 0, 0
	for t, n := range r.pending[pid] {
		if t != "" {
			all += n
			if t == target {
				toTarget += n
			}
		}
	}
	if part != nil {
		for p := range part.peers {
			if p.kind == subscribePeer {
				all++
				if p.remoteParticipantID == target {
					toTarget++
				}
			}
		}
	}
	cfg := r.s.cfg
	if toTarget >= cfg.MaxSubscriptionsPerPublisher {
		return refusal.Newf(http.StatusConflict, "this participant already has %d subscription(s) to %q, its limit; "+
			"DELETE one first", toTarget, target)
	}
	if all >= cfg.MaxSubscriptions {
		return refusal.Newf(http.StatusTooManyRequests,
			"this participant already has %d subscriptions, its limit; DELETE one first", all)
	}
	return nil
}

// revokedLocked refuses a participant DisconnectParticipant removed, or
// anyone once the stage was deleted: their offers may have been in
// negotiation when the signal came.
func (r *room) revokedLocked(pid string) error {
	switch {
	case r.revoked[stagesignal.Everyone]:
		return refusal.New(http.StatusNotFound, "the stage "+r.stageARN+" does not exist (deleted?)")
	case r.revoked[pid]:
		return errRevokedHere
	}
	return nil
}

// errRevokedHere refuses a participant DisconnectParticipant removed while
// its offer was being negotiated.
var errRevokedHere = refusal.New(http.StatusForbidden,
	"participant token refused: participant was disconnected from this stage and may not join again")

// errorLog is what a room recorded of one participant's error events in
// its session.
type errorLog struct {
	n          int                  // recorded
	suppressed int                  // not recorded: over the limit or repeated
	last       map[string]time.Time // by event name and code
}

// allowError reports whether an error event of pid may be recorded now:
// at most MaxErrorEvents in a session, the same one at most once every
// ErrorEventInterval. r.mu is held.
func (r *room) allowError(pid, name, code string) bool {
	l := r.errors[pid]
	if l == nil {
		l = &errorLog{last: map[string]time.Time{}}
		r.errors[pid] = l
	}
	key := name + ":" + code
	at := time.Now()
	if l.n >= r.s.cfg.MaxErrorEvents || at.Sub(l.last[key]) < r.s.cfg.ErrorEventInterval {
		l.suppressed++
		return false
	}
	l.n++
	l.last[key] = at
	return true
}

// FanoutDropped is how many packets subscribers lost because their writer
// shard fell behind (stage/fanout.go): a node out of CPU.
func (s *Server) FanoutDropped() uint64 { return s.fanoutDropped.Load() }

// pcCounter counts PeerConnections: made since start, and open now.
type pcCounter struct {
	made, open atomic.Int64
}

func (c *pcCounter) add()  { c.made.Add(1); c.open.Add(1) }
func (c *pcCounter) done() { c.open.Add(-1) }

// PeerConnections reports how many WebRTC peer connections the server has
// made since it started, and how many are open now (negotiating or
// joined).
func (s *Server) PeerConnections() (made, open int64) {
	return s.pcs.made.Load(), s.pcs.open.Load()
}
