// The cascade, between an edge and the origin: the origin admits and
// records the subscribers edges serve, so that a stage has one participant
// list wherever its subscribers are.
//
// An edge reports on stagehand.stage.origin.<origin node>: join (admit a
// subscriber — quota, revocations, per-participant limits — and record it
// JOINED), started (SUBSCRIBE_STARTED) and leave. The origin tells an edge
// on stagehand.stage.edge.<edge node> to end one of its subscribers (it was
// disconnected, or its publisher left) or a relay. The subscribers of an
// edge that goes silent are recorded as having left.

package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/token"
)

const (
	originSubjectPrefix = "stagehand.stage.origin."
	edgeSubjectPrefix   = "stagehand.stage.edge."
	edgeRequestTimeout  = 3 * time.Second
)

func originSubject(node string) string { return originSubjectPrefix + nodeKey(node) }
func edgeSubject(node string) string   { return edgeSubjectPrefix + nodeKey(node) }

// What an edge reports of a subscriber.
const (
	opJoin    = "join"
	opStarted = "started"
	opLeave   = "leave"
)

// edgeReport is an edge's message to the origin about one of its
// subscribers (Session is its session on the edge).
type edgeReport struct {
	Op          string            `json:"op"`
	Stage       string            `json:"stage"`
	StageARN    string            `json:"stageArn"`
	Edge        string            `json:"edge"`
	Session     string            `json:"session"`
	Participant string            `json:"participant"`
	UserID      string            `json:"userId,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Publisher   string            `json:"publisher"`
	UserAgent   string            `json:"userAgent,omitempty"`
	Reason      string            `json:"reason,omitempty"`
}

// edgeAnswer answers a join: Status 0 when admitted, else the refusal.
type edgeAnswer struct {
	Status  int    `json:"status,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// edgeOrder is the origin's message to an edge: end the subscriber of
// Session, or the relay of Publisher whose session on the origin is Relay.
type edgeOrder struct {
	Stage     string `json:"stage"`
	Session   string `json:"session,omitempty"`
	Publisher string `json:"publisher,omitempty"`
	Relay     string `json:"relay,omitempty"`
	Reason    string `json:"reason"`
}

// edgeRef is, on the origin, the edge a remote subscriber or a relay
// comes from.
type edgeRef struct {
	node    string
	session string // the subscriber's session on the edge; "" for a relay
}

func (e *edgeRef) key() string { return e.node + "/" + e.session }

// listenEdges subscribes to what edges report and what origins order.
func (cl *cluster) listenEdges() error {
	var err error
	if cl.reports, err = cl.nc.Subscribe(originSubject(cl.cfg.NodeID), cl.onEdgeReport); err != nil {
		return fmt.Errorf("stage: subscribe to edge reports: %w", err)
	}
	if cl.orders, err = cl.nc.Subscribe(edgeSubject(cl.cfg.NodeID), cl.onEdgeOrder); err != nil {
		return fmt.Errorf("stage: subscribe to origin orders: %w", err)
	}
	return nil
}

// joinAtOrigin asks the origin to admit p, a subscriber this edge is
// about to serve.
func (cl *cluster) joinAtOrigin(ctx context.Context, rm *room, c token.Claims, p *peer, userAgent string) error {
	m := rm.report(opJoin, p, "")
	m.UserID, m.Attributes, m.UserAgent = c.UserID, c.Attributes, userAgent
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, edgeRequestTimeout)
	defer cancel()
	reply, err := cl.nc.RequestWithContext(rctx, originSubject(rm.origin.node), b)
	if err != nil {
		return refusal.New(http.StatusServiceUnavailable, "the stage's origin does not answer; retry: "+err.Error())
	}
	var ans edgeAnswer
	if err := json.Unmarshal(reply.Data, &ans); err != nil {
		return fmt.Errorf("the origin's answer: %w", err)
	}
	if ans.Status != 0 {
		return &refusal.Error{Status: ans.Status, Code: ans.Code, Message: ans.Message}
	}
	p.atOrigin = true
	return nil
}

// tellOrigin reports that subscriber p started or left, on a goroutine of
// its own (r.mu may be held); a leave is retried, for the origin not to
// keep a subscriber that is gone.
func (cl *cluster) tellOrigin(rm *room, p *peer, op, reason string) {
	b, err := json.Marshal(rm.report(op, p, reason))
	if err != nil {
		return
	}
	subject := originSubject(rm.origin.node)
	cl.s.goTracked(func() {
		for range 3 {
			ctx, cancel := context.WithTimeout(cl.s.ctx, edgeRequestTimeout)
			_, err := cl.nc.RequestWithContext(ctx, subject, b)
			cancel()
			if err == nil || errors.Is(err, nats.ErrNoResponders) || cl.s.ctx.Err() != nil {
				return
			}
		}
	})
}

func (r *room) report(op string, p *peer, reason string) edgeReport {
	return edgeReport{Op: op, Stage: r.stageID, StageARN: r.stageARN, Edge: r.s.cluster.cfg.NodeID,
		Session: p.resourceID, Participant: p.participantID, Publisher: p.remoteParticipantID, Reason: reason}
}

// onEdgeReport applies an edge's report on a goroutine of its own (a join
// writes to the store), and answers it.
func (cl *cluster) onEdgeReport(msg *nats.Msg) {
	var m edgeReport
	if err := json.Unmarshal(msg.Data, &m); err != nil || m.Edge == "" || m.Session == "" {
		cl.s.log.Warn("bad edge report", "error", err)
		return
	}
	cl.s.goTracked(func() {
		var ans edgeAnswer
		switch m.Op {
		case opJoin:
			ans = answerOf(cl.admitRemote(m))
		case opStarted:
			if p := cl.remote(m.Edge, m.Session); p != nil {
				p.r.subscribeStarted(p)
			}
		case opLeave:
			if p := cl.remote(m.Edge, m.Session); p != nil {
				p.close(m.Reason)
			}
		}
		if msg.Reply != "" {
			b, _ := json.Marshal(ans)
			_ = msg.Respond(b)
		}
	})
}

func answerOf(err error) edgeAnswer {
	var re *refusal.Error
	switch {
	case err == nil:
		return edgeAnswer{}
	case errors.As(err, &re):
		return edgeAnswer{Status: re.Status, Code: re.Code, Message: re.Message}
	default:
		return edgeAnswer{Status: http.StatusServiceUnavailable, Message: "the stage's origin cannot admit: " + err.Error()}
	}
}

// admitRemote joins an edge's subscriber to the stage this node hosts, as
// it would join one of its own: a peer without a connection here.
func (cl *cluster) admitRemote(m edgeReport) error {
	if !cl.holds(m.Stage) {
		return refusal.New(http.StatusServiceUnavailable, "the stage is moving to another node; retry in a second")
	}
	rm := cl.s.room(m.Stage, m.StageARN)
	if rm == nil {
		return refusal.New(http.StatusServiceUnavailable, "the stage server is shutting down")
	}
	rm.replaceRemote(m.Participant, m.Publisher, m.Edge)
	release, err := rm.reserve(m.Participant, subscribePeer, m.Publisher)
	if err != nil {
		return err
	}
	defer release()
	if rm.publisher(m.Publisher) == nil {
		rm.recordError(m.Participant, "SUBSCRIBE_ERROR", "PUBLISHER_NOT_FOUND")
		return refusal.Newf(http.StatusNotFound, "participant %q is not publishing on this stage", m.Publisher)
	}
	p := newPeer(cl.s, rm, subscribePeer, m.Participant)
	p.remoteParticipantID = m.Publisher
	p.edge = &edgeRef{node: m.Edge, session: m.Session}
	c := token.Claims{ParticipantID: m.Participant, UserID: m.UserID, StageARN: m.StageARN, StageID: m.Stage,
		Attributes: m.Attributes, Subscribe: true}
	if err := rm.join(c, p, clientInfo{userAgent: m.UserAgent}); err != nil {
		return err
	}
	cl.mu.Lock()
	cl.remotes[p.edge.key()] = p
	cl.mu.Unlock()
	return nil
}

// replaceRemote ends participant pid's subscriptions to publisher that
// edges other than node serve: a subscriber whose edge died or drained
// comes back through another node before the origin saw the edge go, and
// its new subscription replaces the old.
func (r *room) replaceRemote(pid, publisher, node string) {
	r.mu.Lock()
	var old []*peer
	if part := r.participants[pid]; part != nil {
		for p := range part.peers {
			if p.edge != nil && p.edge.session != "" && p.edge.node != node && p.remoteParticipantID == publisher {
				old = append(old, p)
			}
		}
	}
	r.mu.Unlock()
	for _, p := range old {
		p.close("subscribed again through another node")
	}
}

func (cl *cluster) remote(edge, session string) *peer {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.remotes[(&edgeRef{node: edge, session: session}).key()]
}

// endRemote forgets p, a remote subscriber or a relay that left this
// origin, and tells its edge to end it there too.
func (cl *cluster) endRemote(p *peer, reason string) {
	o := edgeOrder{Stage: p.r.stageID, Session: p.edge.session, Reason: reason}
	if p.edge.session == "" {
		o.Publisher, o.Relay = p.remoteParticipantID, p.resourceID
	} else {
		cl.mu.Lock()
		if cl.remotes[p.edge.key()] == p {
			delete(cl.remotes, p.edge.key())
		}
		cl.mu.Unlock()
	}
	if b, err := json.Marshal(o); err == nil {
		_ = cl.nc.Publish(edgeSubject(p.edge.node), b)
	}
}

// onEdgeOrder ends a local subscriber or relay as its origin asks.
func (cl *cluster) onEdgeOrder(msg *nats.Msg) {
	var o edgeOrder
	if err := json.Unmarshal(msg.Data, &o); err != nil {
		return
	}
	rm := cl.s.roomOf(o.Stage)
	if rm == nil || rm.origin == nil {
		return
	}
	var target *peer
	if o.Session != "" {
		cl.s.mu.Lock()
		target = cl.s.sessions[o.Session]
		cl.s.mu.Unlock()
	} else if pub := rm.publisher(o.Publisher); pub != nil && pub.relay != nil &&
		strings.HasSuffix(pub.relay.session, "/session/"+o.Relay) {
		target = pub // not a relay started since
	}
	if target == nil || target.r != rm {
		return
	}
	cl.s.goTracked(func() { target.close(o.Reason) })
}

// edgeGrace is how long an edge stays silent before the origin ends its
// subscribers: a node short of CPU announces itself late. A subscriber of
// an edge that died and that comes back through another node is not held
// up by it (replaceRemote).
const edgeGrace = 5 * time.Second

// sweepRemotes ends the remote subscribers of edges silent for edgeGrace.
func (cl *cluster) sweepRemotes(ctx context.Context) {
	cl.mu.Lock()
	byNode := map[string][]*peer{}
	for _, p := range cl.remotes {
		byNode[p.edge.node] = append(byNode[p.edge.node], p)
	}
	cl.mu.Unlock()
	now := time.Now()
	for node, peers := range byNode {
		alive := cl.alive(ctx, node)
		cl.mu.Lock()
		if alive {
			delete(cl.silentEdges, node)
		} else if cl.silentEdges[node].IsZero() {
			cl.silentEdges[node] = now
		}
		since := cl.silentEdges[node]
		cl.mu.Unlock()
		if since.IsZero() || now.Sub(since) < edgeGrace {
			continue
		}
		for _, p := range peers {
			p.close("the edge node serving the subscriber is gone")
		}
	}
}
