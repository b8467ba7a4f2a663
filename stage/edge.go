// The cascade, on an edge. A node that does not host a stage still serves
// that stage's subscribers: it relays each publisher's tracks once from the
// stage's host (the origin), as a WHEP subscriber there under its own relay
// participant, and fans them out to its local subscribers as it would a
// publisher's. Their NACKs are answered from this node's packet history;
// their keyframe requests go upstream at most every 200 ms a track however
// many ask (forwardTrack.requestKeyframe). The origin keeps the one
// participant list: it admits each subscriber an edge serves, and records
// its events (remote.go). An edge room records nothing itself.
//
// A relay ends when its publisher leaves the origin, when no local
// subscriber has wanted it for relayLinger, or when the stage moves to
// another node: the edge room is then evicted, and its subscribers
// reconnect, to be served from the new origin.

package stage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

const (
	// relayLinger is how long a relay outlives its last local subscriber:
	// a viewer who reloads the page finds it still running.
	relayLinger = 5 * time.Second
	// relayPrefix starts relay participant ids. It is a reserved
	// (composition-) id: only the server's key signs it, and the origin
	// neither lists nor records it.
	relayPrefix = tokenstore.ReservedParticipantPrefix + "relay-"
	// relayNodeAttr names the relaying node in a relay token.
	relayNodeAttr = "stagehandNode"
	relayLifetime = time.Hour
	// edgeSession stands for the session id in an edge room, which
	// records nothing: the origin has the session.
	edgeSession = "edge"
)

// isRelay reports whether participant id is a node relaying a stage.
func isRelay(id string) bool { return strings.HasPrefix(id, relayPrefix) }

// relayID is node's relay participant id.
func relayID(node string) string {
	sum := sha256.Sum256([]byte(node))
	return relayPrefix + hex.EncodeToString(sum[:8])
}

// edgeLink is the origin an edge room relays from.
type edgeLink struct {
	node, url string
}

// relayLink is a relay's subscription on the origin.
type relayLink struct {
	token   string
	session string // its URL, for the DELETE
}

// edgeRoom returns the room that serves stage subscribers relayed from
// the origin l names, replacing one that relayed from another node; nil
// after Close, or when this node hosts the stage.
func (s *Server) edgeRoom(stageID, stageARN string, l lease) *room {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	old := s.rooms[stageID]
	if old != nil && old.origin == nil {
		s.mu.Unlock()
		return nil
	}
	if old != nil && old.origin.node == l.Node {
		s.mu.Unlock()
		return old
	}
	r := newRoom(s, stageID, stageARN)
	r.origin = &edgeLink{node: l.Node, url: strings.TrimSuffix(l.URL, "/")}
	s.rooms[stageID] = r
	s.mu.Unlock()
	if old != nil {
		old.evict("the stage moved to another node: reconnect")
	}
	return r
}

// relayStart is a relay being started, which other subscribers wait for.
type relayStart struct {
	done chan struct{}
	p    *peer
	err  error
}

// relay returns the relay of publisher pid's tracks, starting it if none
// runs.
func (r *room) relay(ctx context.Context, pid string) (*peer, error) {
	r.mu.Lock()
	if part := r.participants[pid]; part != nil && part.pub != nil {
		r.mu.Unlock()
		return part.pub, nil
	}
	st := r.relays[pid]
	if st != nil {
		r.mu.Unlock()
		select {
		case <-st.done:
			return st.p, st.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st = &relayStart{done: make(chan struct{})}
	r.relays[pid] = st
	r.mu.Unlock()
	st.p, st.err = r.startRelay(ctx, pid)
	r.mu.Lock()
	delete(r.relays, pid)
	r.mu.Unlock()
	close(st.done)
	return st.p, st.err
}

// startRelay subscribes to publisher pid on the origin and joins the relay
// to this room as that publisher.
func (r *room) startRelay(ctx context.Context, pid string) (*peer, error) {
	s := r.s
	tok, err := s.cluster.relayToken(r.stageID, r.stageARN)
	if err != nil {
		return nil, err
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("new relay peer connection: %w", err)
	}
	s.pcs.add()
	p := newPeer(s, r, publishPeer, pid)
	p.pc = pc
	p.relay = &relayLink{token: tok}
	p.pc.OnTrack(p.onTrack)
	if err := p.offerUpstream(ctx, r.origin.url+"/whep/"+url.PathEscape(pid)); err != nil {
		p.closeUnjoined()
		return nil, err
	}
	if err := r.joinRelay(p); err != nil {
		p.closeUnjoined()
		return nil, err
	}
	p.pc.OnConnectionStateChange(p.onState)
	r.log.Info("relaying a publisher from the origin", "participant", pid, "origin", r.origin.node)
	// The subscriber it was started for may yet be refused.
	r.mu.Lock()
	r.lingerRelayLocked(pid)
	r.mu.Unlock()
	return p, nil
}

// offerUpstream negotiates the relay's subscription at whepURL: an offer
// to receive audio and video, answered with the publisher's tracks.
func (p *peer) offerUpstream(ctx context.Context, whepURL string) error {
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := p.pc.AddTransceiverFromKind(k,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("relay transceiver: %w", err)
		}
	}
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("relay offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("relay offer: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return errors.New("relay: ICE gathering did not complete in 5 s")
	}
	answer, session, err := postOffer(ctx, whepURL, p.relay.token, p.pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	p.relay.session = session
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("relay: the origin's answer: %w", err)
	}
	audio, video := acceptedMedia(answer)
	if p.expected = audio + video; p.expected == 0 {
		return refusal.Newf(http.StatusNotFound, "participant %q sends no media on this stage", p.participantID)
	}
	return nil
}

// upstream is the client of node-to-node requests: it follows no
// redirect, since the origin must answer itself.
var upstream = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// postOffer sends a WHEP offer with a relay token and returns the answer
// and the session's URL.
func postOffer(ctx context.Context, whepURL, tok, offer string) (answer, session string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, whepURL, strings.NewReader(offer))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := upstream.Do(req)
	if err != nil {
		return "", "", refusal.New(http.StatusBadGateway, "the stage's origin does not answer: "+err.Error())
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxOfferBytes))
	switch {
	case resp.StatusCode == http.StatusCreated:
	case resp.StatusCode == http.StatusNotFound:
		return "", "", refusal.New(http.StatusNotFound, strings.TrimSpace(string(body)))
	case resp.StatusCode == http.StatusTemporaryRedirect:
		return "", "", refusal.New(http.StatusServiceUnavailable, "the stage is moving to another node; retry in a second")
	default:
		return "", "", refusal.Newf(http.StatusBadGateway, "the stage's origin refused the relay: %s: %s",
			resp.Status, strings.TrimSpace(string(body)))
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", "", fmt.Errorf("relay: session location: %w", err)
	}
	return string(body), loc.String(), nil
}

// deleteUpstream ends the relay's subscription on the origin (best
// effort: the origin also sees the connection close).
func (l *relayLink) deleteUpstream() {
	if l.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, l.session, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+l.token)
	if resp, err := upstream.Do(req); err == nil {
		_ = resp.Body.Close()
	}
}

// closeUnjoined ends a relay that never joined its room.
func (p *peer) closeUnjoined() {
	p.relay.deleteUpstream()
	_ = p.pc.Close()
	p.s.pcs.done()
}

// joinRelay adds relay p to the room as its publisher.
func (r *room) joinRelay(p *peer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return refusal.New(http.StatusServiceUnavailable, "the stage moved to another node; retry")
	}
	if r.sessionID == "" {
		if err := r.startSession(); err != nil {
			return err
		}
	}
	part := r.participants[p.participantID]
	if part == nil {
		part = &participant{peers: map[*peer]struct{}{}}
		part.rec.ParticipantID = p.participantID
		r.participants[p.participantID] = part
	}
	if part.pub != nil {
		return refusal.New(http.StatusConflict, "the publisher is relayed already")
	}
	part.peers[p] = struct{}{}
	part.pub = p
	return nil
}

// audienceLocked counts the local subscribers of publisher pid, joined or
// being negotiated.
func (r *room) audienceLocked(pid string) int {
	n := 0
	for _, part := range r.participants {
		for p := range part.peers {
			if p.kind == subscribePeer && p.remoteParticipantID == pid {
				n++
			}
		}
	}
	for _, pend := range r.pending {
		n += pend[pid]
	}
	return n
}

// lingerRelayLocked ends the relay of pid once it has had no local
// subscriber for relayLinger; r.mu is held.
func (r *room) lingerRelayLocked(pid string) {
	part := r.participants[pid]
	if part == nil || part.pub == nil || part.pub.relay == nil || r.audienceLocked(pid) > 0 {
		return
	}
	relay := part.pub
	r.s.goTracked(func() {
		select {
		case <-time.After(relayLinger):
		case <-relay.done:
			return
		case <-r.s.ctx.Done():
			return
		}
		r.mu.Lock()
		idle := r.audienceLocked(pid) == 0
		r.mu.Unlock()
		if idle {
			relay.close("no subscriber left on this edge")
		}
	})
}

// relayToken signs this node's SUBSCRIBE token for a stage's origin.
func (cl *cluster) relayToken(stageID, stageARN string) (string, error) {
	if cl.cfg.RelaySigner == nil {
		return "", errors.New("stage: this node has no key to sign relay tokens")
	}
	now := time.Now().Truncate(time.Second)
	return cl.cfg.RelaySigner.Sign(token.Claims{ParticipantID: relayID(cl.cfg.NodeID), UserID: "stagehand-relay",
		StageARN: stageARN, StageID: stageID, Subscribe: true, Attributes: map[string]string{relayNodeAttr: cl.cfg.NodeID},
		IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(relayLifetime)})
}

// followOrigins evicts the edge rooms whose stage moved or lost its host:
// their subscribers reconnect, and are served from the new origin.
func (cl *cluster) followOrigins(ctx context.Context) {
	for _, rm := range cl.s.allRooms() {
		if rm.origin == nil {
			continue
		}
		l, err := cl.leases.Get(ctx, rm.stageID)
		switch {
		case err == nil && l.Node == rm.origin.node:
		case err == nil || errors.Is(err, store.ErrNotFound):
			rm.evict("the stage moved to another node: reconnect")
		}
	}
}
