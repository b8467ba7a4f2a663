package stage

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

// room is one stage's live state on this server: its session, its
// participants and their peer connections, and the watchers of its events.
// Every change is recorded in the store and told to the watchers under mu,
// so that the API and the events channel see changes in the order they
// happened.
type room struct {
	s                 *Server
	stageID, stageARN string
	log               *slog.Logger

	tag string // names this room in its NATS events (feed.go)
	// origin, on an edge, is the node hosting the stage, which this room
	// relays its publishers from and which records everything (edge.go);
	// nil on the host.
	origin *edgeLink

	mu           sync.Mutex
	dead         bool  // dropped from the server; a new room takes over
	evicted      bool  // the stage moved to another node: nothing more is recorded here
	seq          int64 // of the last message published on NATS
	sessionID    string
	lastSeq      int64
	joined       int // participants that joined this session
	participants map[string]*participant
	watchers     map[*watcher]struct{}
	pending      map[string]pending   // by participant id: peers being negotiated (limits.go)
	errors       map[string]*errorLog // by participant id, in this session
	// revoked are the participants DisconnectParticipant removed: an offer
	// of theirs negotiated meanwhile must not join.
	revoked map[string]bool
	relays  map[string]*relayStart // on an edge: relays being started, by publisher
}

// participant is one token's presence on the stage.
type participant struct {
	seq   int // join order within the session
	rec   ivs.Participant
	peers map[*peer]struct{}
	pub   *peer // the WHIP connection, if publishing
}

func newRoom(s *Server, stageID, stageARN string) *room {
	return &room{s: s, stageID: stageID, stageARN: stageARN, tag: newRoomTag(),
		log:          s.log.With("stage", stageID),
		participants: map[string]*participant{}, watchers: map[*watcher]struct{}{},
		pending: map[string]pending{}, errors: map[string]*errorLog{}, revoked: map[string]bool{},
		relays: map[string]*relayStart{}}
}

// join admits p, a new peer connection of the token's participant,
// starting the stage session if the stage was idle.
func (r *room) join(c token.Claims, p *peer, client clientInfo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return errRoomGone
	}
	if err := r.revokedLocked(c.ParticipantID); err != nil {
		return err
	}
	var part *participant
	if r.sessionID != "" { // participants of an ended session are forgotten
		part = r.participants[c.ParticipantID]
	}
	if err := r.admit(c, p, part); err != nil {
		r.recordErrorLocked(c.ParticipantID, "JOIN_ERROR", err.Code)
		return err
	}
	if r.sessionID == "" {
		if err := r.startSession(); err != nil {
			return err
		}
	}
	if part == nil {
		part = &participant{peers: map[*peer]struct{}{}, rec: ivs.Participant{
			ParticipantID: c.ParticipantID, UserID: c.UserID, Attributes: nonNil(c.Attributes),
			Protocol: "WHIP", RecordingState: "DISABLED", ReplicationType: "NONE",
		}}
		client.fill(&part.rec)
		r.joined++
		part.seq = r.joined
		r.participants[c.ParticipantID] = part
	}
	first := len(part.peers) == 0
	part.peers[p] = struct{}{}
	if p.kind == publishPeer {
		part.pub = p
	}
	if first {
		at := now()
		part.rec.State = "CONNECTED"
		if part.rec.FirstJoinTime == nil {
			part.rec.FirstJoinTime = &at
		}
		r.saveParticipant(part)
		r.recordLocked(c.ParticipantID, "JOINED", "", "")
		if !Hidden(c.ParticipantID) {
			r.broadcast(Message{Type: MsgParticipantJoined, Participant: part.info()})
		}
	}
	return nil
}

var errRoomGone = errors.New("stage room closed")

func (r *room) admit(c token.Claims, p *peer, part *participant) *refusal.Error {
	if p.kind == publishPeer && !c.Publish {
		return &refusal.Error{Status: http.StatusForbidden, Code: "INSUFFICIENT_CAPABILITIES",
			Message: "the token does not allow publishing (no PUBLISH capability)"}
	}
	if p.kind == subscribePeer && !c.Subscribe {
		return &refusal.Error{Status: http.StatusForbidden, Code: "INSUFFICIENT_CAPABILITIES",
			Message: "the token does not allow subscribing (no SUBSCRIBE capability)"}
	}
	if p.kind != publishPeer {
		if part == nil && r.subscribers() >= r.s.cfg.MaxSubscribers {
			return &refusal.Error{Status: http.StatusServiceUnavailable, Code: "QUOTA_EXCEEDED",
				Message: fmt.Sprintf("the stage has its maximum of %d subscribers", r.s.cfg.MaxSubscribers)}
		}
		return nil
	}
	if part != nil && part.pub != nil {
		return refusal.New(http.StatusConflict, "this participant is already publishing; DELETE its WHIP session first")
	}
	if r.publishers() >= r.s.cfg.MaxPublishers {
		return &refusal.Error{Status: http.StatusServiceUnavailable, Code: "QUOTA_EXCEEDED",
			Message: fmt.Sprintf("the stage has its maximum of %d publishers", r.s.cfg.MaxPublishers)}
	}
	return nil
}

func (r *room) connected() int {
	n := 0
	for _, p := range r.participants {
		if len(p.peers) > 0 {
			n++
		}
	}
	return n
}

// subscribers counts the connected participants that do not publish.
func (r *room) subscribers() int {
	n := 0
	for _, p := range r.participants {
		if len(p.peers) > 0 && p.pub == nil {
			n++
		}
	}
	return n
}

func (r *room) publishers() int {
	n := 0
	for _, p := range r.participants {
		if p.pub != nil {
			n++
		}
	}
	return n
}

// startSession begins a stage session: the stage's activeSessionId is
// set, and a StageSession recorded.
func (r *room) startSession() error {
	if r.origin != nil {
		r.sessionID = edgeSession
		r.participants = map[string]*participant{}
		return nil
	}
	ctx, cancel := r.s.storeCtx()
	defer cancel()
	id := ivs.NewSessionID()
	_, err := r.s.store.Stages.Update(ctx, r.stageID, func(st *ivs.Stage) error {
		st.ActiveSessionID = id
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return refusal.New(http.StatusNotFound, "the stage "+r.stageARN+" does not exist (deleted?)")
	}
	if err != nil {
		return fmt.Errorf("start session of stage %s: %w", r.stageID, err)
	}
	ss := ivs.StageSession{SessionID: id, StartTime: now()}
	if err := r.s.store.Sessions.Put(ctx, r.stageID+"."+id, ss); err != nil {
		return fmt.Errorf("record session %s: %w", id, err)
	}
	r.sessionID = id
	r.participants = map[string]*participant{}
	r.errors = map[string]*errorLog{}
	r.log.Info("stage session started", "session", id)
	r.broadcast(Message{Type: MsgSessionStarted, SessionID: id})
	return nil
}

// endSession closes the session once nobody is connected.
func (r *room) endSession() {
	if r.origin != nil {
		r.sessionID = ""
		return
	}
	ctx, cancel := r.s.storeCtx()
	defer cancel()
	id := r.sessionID
	end := now()
	if _, err := r.s.store.Sessions.Update(ctx, r.stageID+"."+id, func(ss *ivs.StageSession) error {
		ss.EndTime = &end
		return nil
	}); err != nil {
		r.log.Warn("record session end", "session", id, "error", err)
	}
	_, err := r.s.store.Stages.Update(ctx, r.stageID, func(st *ivs.Stage) error {
		if st.ActiveSessionID == id {
			st.ActiveSessionID = ""
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		r.log.Warn("clear active session", "session", id, "error", err)
	}
	r.sessionID = ""
	r.log.Info("stage session ended", "session", id)
	r.broadcast(Message{Type: MsgSessionEnded, SessionID: id})
}

// leave removes p; the participant leaves when it was its last peer, and
// the session ends when nobody is left.
func (r *room) leave(p *peer, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	part := r.participants[p.participantID]
	if part == nil {
		return
	}
	if _, ok := part.peers[p]; !ok {
		return
	}
	delete(part.peers, p)
	if p.atOrigin {
		r.s.cluster.tellOrigin(r, p, opLeave, reason)
	}
	if r.evicted {
		return // the stage's next host records what became of its participants
	}
	if r.origin != nil && p.kind == subscribePeer {
		r.lingerRelayLocked(p.remoteParticipantID)
	}
	switch {
	case p.kind == publishPeer && part.pub == p:
		part.pub = nil
		if p.started {
			r.recordLocked(p.participantID, "PUBLISH_STOPPED", "", "")
			r.broadcast(Message{Type: MsgTracksUnpublished, Participant: part.info()})
		}
	case p.kind == subscribePeer && p.started:
		r.recordLocked(p.participantID, "SUBSCRIBE_STOPPED", p.remoteParticipantID, "")
	}
	if len(part.peers) == 0 {
		part.rec.State = "DISCONNECTED"
		r.saveParticipant(part)
		r.recordLocked(p.participantID, "LEFT", "", "")
		if !Hidden(p.participantID) {
			r.broadcast(Message{Type: MsgParticipantLeft, Participant: part.info(), Reason: reason})
		}
	}
	if r.connected() == 0 && r.sessionID != "" {
		r.endSession()
	}
	r.dropIfIdle()
}

// evict stops serving the stage here, recording nothing more: its watchers
// are told to reconnect and its peers are closed (they reconnect through the
// cluster's address to the stage's next host).
func (r *room) evict(reason string) {
	r.mu.Lock()
	r.evicted, r.dead = true, true
	for w := range r.watchers {
		w.evicted = true
		select {
		case w.ch <- Message{Type: MsgReconnect, Reason: reason}:
		default:
		}
		delete(r.watchers, w)
		close(w.ch)
	}
	var peers []*peer
	for _, part := range r.participants {
		for p := range part.peers {
			peers = append(peers, p)
		}
	}
	r.mu.Unlock()
	r.s.dropRoom(r)
	for _, p := range peers {
		p.close(reason)
	}
}

// dropIfIdle forgets the room when nobody is connected or watching.
func (r *room) dropIfIdle() {
	if r.sessionID == "" && len(r.watchers) == 0 {
		r.dead = true
		r.s.dropRoom(r)
	}
}

// publishStarted records that p's tracks flow.
func (r *room) publishStarted(p *peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	part := r.participants[p.participantID]
	if part == nil || part.pub != p || p.started {
		return
	}
	p.started = true
	part.rec.Published = true
	r.saveParticipant(part)
	r.recordLocked(p.participantID, "PUBLISH_STARTED", "", "")
	r.broadcast(Message{Type: MsgTracksPublished, Participant: part.info()})
	if hook := r.s.cfg.OnPublishStarted; hook != nil && !Hidden(p.participantID) && r.origin == nil {
		stageID, sessionID, pid := r.stageID, r.sessionID, p.participantID
		r.s.goTracked(func() { hook(r.s.ctx, stageID, sessionID, pid) })
	}
}

// tracksChanged tells watchers that a publishing participant's tracks
// changed (a late track).
func (r *room) tracksChanged(p *peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if part := r.participants[p.participantID]; part != nil && part.pub == p && p.started {
		r.broadcast(Message{Type: MsgTracksPublished, Participant: part.info()})
	}
}

// subscribeStarted records that p receives its publisher's tracks.
func (r *room) subscribeStarted(p *peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	part := r.participants[p.participantID]
	if part == nil || p.started {
		return
	}
	if _, ok := part.peers[p]; !ok {
		return
	}
	p.started = true
	if r.origin != nil && p.atOrigin {
		r.s.cluster.tellOrigin(r, p, opStarted, "")
	}
	r.recordLocked(p.participantID, "SUBSCRIBE_STARTED", p.remoteParticipantID, "")
}

// publisher returns the publishing peer of participant id.
func (r *room) publisher(id string) *peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if part := r.participants[id]; part != nil {
		return part.pub
	}
	return nil
}

// subscribersOf lists the subscribe peers receiving publisher id.
func (r *room) subscribersOf(id string) []*peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*peer
	for _, part := range r.participants {
		for p := range part.peers {
			if p.kind == subscribePeer && p.remoteParticipantID == id {
				out = append(out, p)
			}
		}
	}
	return out
}

// disconnect closes the connections of participant id ("*": everyone).
func (r *room) disconnect(id, reason string) {
	r.mu.Lock()
	var peers []*peer
	for pid, part := range r.participants {
		if id == "*" || pid == id {
			for p := range part.peers {
				peers = append(peers, p)
			}
		}
	}
	r.mu.Unlock()
	for _, p := range peers {
		p.close(reason)
	}
}

// recordErrorLocked records an error event under the active session; a
// refused join on an idle stage has no session to be recorded in, and is
// only logged. A participant's repeated errors are recorded and logged
// within limits (allowError): a token replayed 10,000 times writes a few
// events, not 10,000.
func (r *room) recordErrorLocked(pid, name, code string) {
	if r.sessionID == "" {
		r.log.Debug("participant refused", "participant", pid, "event", name, "code", code)
		return
	}
	if code == "" || !r.allowError(pid, name, code) {
		return
	}
	r.log.Info("participant refused", "participant", pid, "event", name, "code", code,
		"suppressed", r.errors[pid].suppressed)
	r.recordLocked(pid, name, "", code)
}

// recordLocked writes one participant event of the active session.
func (r *room) recordLocked(pid, name, remote, code string) {
	if Hidden(pid) || r.origin != nil {
		return
	}
	at := now()
	seq := at.UnixNano()
	if seq <= r.lastSeq {
		seq = r.lastSeq + 1
	}
	r.lastSeq = seq
	ev := ivs.Event{Name: name, ParticipantID: pid, EventTime: at, RemoteParticipantID: remote, ErrorCode: code}
	key := fmt.Sprintf("%s.%s.%s.%019d", r.stageID, r.sessionID, pid, seq)
	ctx, cancel := r.s.storeCtx()
	defer cancel()
	if err := r.s.store.Events.Put(ctx, key, ev); err != nil {
		r.log.Warn("record participant event", "participant", pid, "event", name, "error", err)
	}
	r.log.Debug("participant event", "participant", pid, "event", name, "remote", remote, "code", code)
}

func (r *room) saveParticipant(part *participant) {
	if Hidden(part.rec.ParticipantID) || r.origin != nil {
		return
	}
	ctx, cancel := r.s.storeCtx()
	defer cancel()
	key := r.stageID + "." + r.sessionID + "." + part.rec.ParticipantID
	if err := r.s.store.Participants.Put(ctx, key, part.rec); err != nil {
		r.log.Warn("record participant", "participant", part.rec.ParticipantID, "error", err)
	}
}

// snapshot is what a new watcher is told first.
func (r *room) snapshotLocked() Message {
	m := Message{Type: MsgSnapshot, SessionID: r.sessionID, Participants: []ParticipantInfo{}}
	parts := slices.Collect(maps.Values(r.participants))
	// In the order they joined: layouts place participants by arrival.
	slices.SortFunc(parts, func(a, b *participant) int { return a.seq - b.seq })
	for _, part := range parts {
		if len(part.peers) > 0 && !Hidden(part.rec.ParticipantID) {
			m.Participants = append(m.Participants, *part.info())
		}
	}
	return m
}

func (part *participant) info() *ParticipantInfo {
	in := &ParticipantInfo{ParticipantID: part.rec.ParticipantID, UserID: part.rec.UserID,
		Attributes: maps.Clone(part.rec.Attributes), Tracks: []TrackInfo{}}
	if part.pub != nil && part.pub.started {
		in.Tracks = part.pub.trackInfo()
	}
	return in
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

// now is the time recorded in sessions, participants and events: UTC, in
// milliseconds as IVS reports it.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// CompositionParticipantPrefix starts the participant id of a composition
// worker's subscriber. Like IVS, the stage does not report compositions as
// participants: no participant record, no events, no events-channel
// messages. Only the server's own key may sign a token with such an id
// (tokenstore refuses it from an imported key).
const CompositionParticipantPrefix = tokenstore.ReservedParticipantPrefix

// Hidden reports whether participant id is a composition's.
func Hidden(id string) bool { return strings.HasPrefix(id, CompositionParticipantPrefix) }
