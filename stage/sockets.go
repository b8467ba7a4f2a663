package stage

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/stagesignal"
	"github.com/stagehand-rt/stagehand/token"
)

// eventSocket is one open events WebSocket, as the server counts and ends
// them: at most MaxEventSockets per participant, and each ends when its
// participant is disconnected, its stage deleted, or its token expires.
type eventSocket struct {
	pid    string
	cancel context.CancelCauseFunc
}

// socketEnd is why the server ended an events WebSocket: the close status
// and reason the client is sent.
type socketEnd struct {
	status websocket.StatusCode
	reason string
}

func (e *socketEnd) Error() string { return e.reason }

var errTokenExpired = &socketEnd{websocket.StatusPolicyViolation, "the participant token expired"}

// openSocket counts an events WebSocket of the token's participant, or
// refuses it past the limit. The context it returns ends with the socket's
// reason to close (see closeFor); done forgets the socket.
func (s *Server) openSocket(c token.Claims) (ctx context.Context, done func(), err error) {
	ctx, cancel := context.WithCancelCause(s.ctx)
	es := &eventSocket{pid: c.ParticipantID, cancel: cancel}
	s.mu.Lock()
	set := s.sockets[c.StageID]
	n := 0
	for o := range set {
		if o.pid == c.ParticipantID {
			n++
		}
	}
	if n >= s.cfg.MaxEventSockets {
		s.mu.Unlock()
		cancel(nil)
		return nil, nil, refusal.Newf(http.StatusTooManyRequests,
			"this participant already has %d events channels open, its limit; close one first", n)
	}
	if set == nil {
		set = map[*eventSocket]struct{}{}
		s.sockets[c.StageID] = set
	}
	set[es] = struct{}{}
	s.mu.Unlock()
	ctx, stop := context.WithDeadlineCause(ctx, c.ExpiresAt, errTokenExpired)
	return ctx, func() {
		stop()
		cancel(nil)
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.sockets[c.StageID], es)
		if len(s.sockets[c.StageID]) == 0 {
			delete(s.sockets, c.StageID)
		}
	}, nil
}

// endSockets closes the events WebSockets of participant pid on the stage
// (stagesignal.Everyone: all of them) with why.
func (s *Server) endSockets(stageID, pid string, why *socketEnd) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for es := range s.sockets[stageID] {
		if pid == stagesignal.Everyone || es.pid == pid {
			es.cancel(why)
		}
	}
}

// closeFor closes conn once ctx ended: with the reason the server ended
// the socket for, or as the server shutting down.
func closeFor(ctx context.Context, conn *websocket.Conn) {
	var why *socketEnd
	if errors.As(context.Cause(ctx), &why) {
		conn.Close(why.status, why.reason)
		return
	}
	conn.Close(websocket.StatusGoingAway, "stage server shutting down")
}

// writeContext bounds one message's write to an events WebSocket. It is
// not cancelled with ctx: the WebSocket library drops the connection when
// a write's context ends mid-write, and the socket's end (ctx) must reach
// the client as a close frame with its reason, written once this write is
// done.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}
