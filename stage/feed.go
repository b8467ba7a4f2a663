// The events of a clustered stage travel on NATS, so that any node serves
// the events WebSocket: the host publishes every message of a stage on
// stagehand.stage.events.<stage id> and answers snapshot requests on
// stagehand.stage.snapshot.<node>.<stage id>. A watcher on any other node (or on
// the host, for a stage it does not host yet) subscribes first, asks for
// the snapshot, then passes on what follows it. A new host starts with a
// snapshot, which tells watchers who is (no longer) there.

package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/nats-io/nats.go"
)

const (
	eventsSubjectPrefix   = "stagehand.stage.events."
	snapshotSubjectPrefix = "stagehand.stage.snapshot."
	snapshotTimeout       = 2 * time.Second
)

func eventsSubject(stageID string) string { return eventsSubjectPrefix + stageID }

func snapshotSubject(nodeKey, stageID string) string {
	return snapshotSubjectPrefix + nodeKey + "." + stageID
}

// envelope is a stage message on NATS: Room names the host's room (a new
// one after each move) and Seq orders its messages.
type envelope struct {
	Room string  `json:"room"`
	Seq  int64   `json:"seq"`
	Msg  Message `json:"msg"`
}

func newRoomTag() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// publishLocked sends m to the stage's watchers on other nodes; r.mu is
// held, which keeps the messages in order.
func (r *room) publishLocked(m Message) {
	cl := r.s.cluster
	if cl == nil {
		return
	}
	r.seq++
	b, err := json.Marshal(envelope{Room: r.tag, Seq: r.seq, Msg: m})
	if err == nil {
		err = cl.nc.Publish(eventsSubject(r.stageID), b)
	}
	if err != nil {
		r.log.Warn("publish stage event on NATS", "type", m.Type, "error", err)
	}
}

// onSnapshotRequest answers for a stage this node hosts; others stay
// silent.
func (cl *cluster) onSnapshotRequest(msg *nats.Msg) {
	stageID := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
	rm := cl.s.roomOf(stageID)
	if rm == nil || !cl.holds(stageID) {
		return
	}
	rm.mu.Lock()
	env := envelope{Room: rm.tag, Seq: rm.seq, Msg: rm.snapshotLocked()}
	rm.mu.Unlock()
	b, err := json.Marshal(env)
	if err == nil {
		_ = msg.Respond(b)
	}
}

// watchRemote serves the events of a stage hosted elsewhere (or nowhere
// yet) to conn, from NATS, until the watcher or the server goes.
func (s *Server) watchRemote(ctx context.Context, conn *websocket.Conn, stageID string) {
	ch := make(chan *nats.Msg, watcherQueue)
	sub, err := s.cluster.nc.ChanSubscribe(eventsSubject(stageID), ch)
	if err != nil {
		conn.Close(websocket.StatusInternalError, "cannot follow the stage's events")
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	cur := s.cluster.snapshot(ctx, stageID)
	if !writeEvent(ctx, conn, cur.Msg) {
		return
	}
	for {
		select {
		case <-ctx.Done():
			closeFor(ctx, conn)
			return
		case m := <-ch:
			var env envelope
			if json.Unmarshal(m.Data, &env) != nil || (env.Room == cur.Room && env.Seq <= cur.Seq) {
				continue
			}
			cur = env
			if !writeEvent(ctx, conn, env.Msg) {
				return
			}
		}
	}
}

// snapshot asks the stage's host for its snapshot; an empty one when
// nobody hosts it.
func (cl *cluster) snapshot(ctx context.Context, stageID string) envelope {
	empty := envelope{Msg: Message{Type: MsgSnapshot, Participants: []ParticipantInfo{}}}
	l, err := cl.leases.Get(ctx, stageID)
	if err != nil {
		return empty
	}
	rctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	reply, err := cl.nc.RequestWithContext(rctx, snapshotSubject(nodeKey(l.Node), stageID), nil)
	if err != nil {
		if !errors.Is(err, nats.ErrNoResponders) {
			cl.s.log.Warn("ask the stage's host for its snapshot", "stage", stageID, "error", err)
		}
		return empty
	}
	var env envelope
	if json.Unmarshal(reply.Data, &env) != nil {
		return empty
	}
	return env
}

func writeEvent(ctx context.Context, conn *websocket.Conn, m Message) bool {
	wctx, cancel := writeContext(ctx)
	defer cancel()
	return wsjson.Write(wctx, conn, m) == nil
}
