package stage

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/nats-io/nats.go"

	"github.com/stagehand-rt/stagehand/stagesignal"
	"github.com/stagehand-rt/stagehand/token"
)

// watcherQueue bounds the messages waiting for one slow watcher; a watcher
// that falls this far behind is disconnected rather than slowing the stage.
const watcherQueue = 256

// watcher is one events-channel connection.
type watcher struct {
	ch      chan Message // closed by the room when the watcher overflows or the room is evicted
	evicted bool         // set before ch is closed when the stage moved
}

func (r *room) addWatcher(w *watcher) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return false
	}
	r.watchers[w] = struct{}{}
	w.ch <- r.snapshotLocked()
	return true
}

func (r *room) removeWatcher(w *watcher) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.watchers[w]; ok {
		delete(r.watchers, w)
		close(w.ch)
	}
	r.dropIfIdle()
}

// broadcast queues m for every watcher, here and on other nodes; r.mu is
// held.
func (r *room) broadcast(m Message) {
	if r.origin != nil {
		return // an edge room has no watchers: the origin tells
	}
	r.publishLocked(m)
	for w := range r.watchers {
		select {
		case w.ch <- m:
		default:
			r.log.Warn("events watcher too slow; disconnecting it")
			delete(r.watchers, w)
			close(w.ch)
		}
	}
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	c, err := s.authorize(r)
	if err != nil {
		writeError(w, err)
		return
	}
	remote := s.cluster != nil && !s.cluster.holds(c.StageID)
	var rm *room
	if remote {
		err = s.checkStage(r.Context(), c)
	} else {
		rm, err = s.openRoom(r.Context(), c, r, false)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	sctx, done, err := s.openSocket(c)
	if err != nil {
		writeError(w, err)
		return
	}
	defer done()
	// Counted now, the socket is ended by a DisconnectParticipant signal;
	// one that came since the token was first checked is seen here.
	if _, err := s.authorize(r); err != nil {
		writeError(w, err)
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // token-authorized, any origin
	if err != nil {
		return // Accept has answered
	}
	if !s.track() {
		conn.Close(websocket.StatusGoingAway, "stage server shutting down")
		return
	}
	defer s.wg.Done()
	defer func() { _ = conn.CloseNow() }() // ends CloseRead's reader whatever happened
	conn.SetReadLimit(4 << 10)
	// Nothing is read; this handles pings and the close. Its context is
	// never cancelled: a cancelled read drops the connection without the
	// close frame that tells the client why.
	read := conn.CloseRead(context.WithoutCancel(sctx))
	ctx, cancel := context.WithCancel(sctx)
	defer cancel()
	defer context.AfterFunc(read, cancel)()
	s.serveEvents(ctx, conn, rm, c, remote)
}

// serveEvents writes the stage's events to conn until it closes, its
// participant is ended, or the server stops.
func (s *Server) serveEvents(ctx context.Context, conn *websocket.Conn, rm *room, c token.Claims, remote bool) {
	if remote {
		s.watchRemote(ctx, conn, c.StageID)
		return
	}
	wt := &watcher{ch: make(chan Message, watcherQueue)}
	for !rm.addWatcher(wt) {
		if rm = s.room(c.StageID, c.StageARN); rm == nil {
			if s.cluster != nil { // the stage moved meanwhile
				s.watchRemote(ctx, conn, c.StageID)
				return
			}
			conn.Close(websocket.StatusGoingAway, "stage server shutting down")
			return
		}
	}
	defer rm.removeWatcher(wt)
	s.pushEvents(ctx, conn, wt)
}

// pushEvents writes the watcher's messages until it closes, overflows, or
// the server stops.
func (s *Server) pushEvents(ctx context.Context, conn *websocket.Conn, wt *watcher) {
	for {
		select {
		case <-ctx.Done():
			closeFor(ctx, conn)
			return
		case m, ok := <-wt.ch:
			if !ok && wt.evicted {
				conn.Close(websocket.StatusServiceRestart, "the stage moved to another node: reconnect")
				return
			}
			if !ok {
				conn.Close(websocket.StatusPolicyViolation, "too slow: events were dropped; reconnect for a new snapshot")
				return
			}
			wctx, cancel := writeContext(ctx)
			err := wsjson.Write(wctx, conn, m)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// onDisconnect handles the API's DisconnectParticipant and DeleteStage
// signals for stages this server hosts.
func (s *Server) onDisconnect(msg *nats.Msg) {
	stageID, ok := stagesignal.DisconnectStage(msg.Subject)
	if !ok {
		return
	}
	var d stagesignal.Disconnect
	if err := json.Unmarshal(msg.Data, &d); err != nil || d.ParticipantID == "" {
		s.log.Warn("bad disconnect signal", "subject", msg.Subject)
		return
	}
	reason := "disconnected by DisconnectParticipant"
	if d.Reason != "" {
		reason += ": " + d.Reason
	}
	if d.ParticipantID == stagesignal.Everyone {
		reason = "the stage was deleted"
	}
	s.endSockets(stageID, d.ParticipantID, &socketEnd{websocket.StatusPolicyViolation, reason})
	rm := s.roomOf(stageID)
	if rm == nil {
		return
	}
	rm.revoke(d.ParticipantID)
	s.goTracked(func() { rm.disconnect(d.ParticipantID, reason) })
}

// revoke keeps participant pid, which DisconnectParticipant removed (or
// everyone, when the stage was deleted), from joining with an offer it
// was negotiating.
func (r *room) revoke(pid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[pid] = true
}
