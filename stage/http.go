package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

// maxOfferBytes bounds an SDP offer; browsers' offers are a few KB.
const maxOfferBytes = 64 << 10

// Handler returns the stage's HTTP surface (see the package comment).
// extra, if not nil, serves every other path (the web page).
func (s *Server) Handler(extra http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip", s.handlePublish)
	mux.HandleFunc("POST /whep/{participantId}", s.handleSubscribe)
	mux.HandleFunc("DELETE /session/{id}", s.handleDelete)
	mux.HandleFunc("PATCH /session/{id}", s.handlePatch)
	mux.HandleFunc("GET /events", s.handleEvents)
	mux.HandleFunc("OPTIONS /", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	if extra != nil {
		mux.Handle("/", extra)
	}
	return cors(mux)
}

// cors lets pages of other origins publish and subscribe: the token, not
// the origin, is what authorizes.
func cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
		hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		hd.Set("Access-Control-Expose-Headers", "Location")
		h.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, err error) {
	var rd *redirectError
	if errors.As(err, &rd) {
		w.Header().Set("Location", rd.to)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	var re *refusal.Error
	if !errors.As(err, &re) {
		http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if re.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	http.Error(w, re.Message, re.Status)
}

// authorize verifies the request's participant token.
func (s *Server) authorize(r *http.Request) (token.Claims, error) {
	tok := bearer(r)
	if tok == "" {
		return token.Claims{}, refusal.New(http.StatusUnauthorized,
			"missing participant token: send Authorization: Bearer <token>")
	}
	c, err := s.verifier.Verify(r.Context(), tok)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, tokenstore.ErrRevoked), errors.Is(err, tokenstore.ErrForeignStage),
		errors.Is(err, tokenstore.ErrReservedParticipant):
		return c, refusal.New(http.StatusForbidden, "participant token refused: "+err.Error())
	case isTokenError(err):
		return c, refusal.New(http.StatusUnauthorized, "participant token refused: "+err.Error())
	default:
		return c, fmt.Errorf("verify token: %w", err)
	}
}

func isTokenError(err error) bool {
	for _, e := range []error{token.ErrMalformed, token.ErrUnsupportedAlgorithm, token.ErrUnknownKey,
		token.ErrBadSignature, token.ErrExpired, token.ErrNotYetValid, token.ErrInvalidClaims} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// bearer takes the token from the Authorization header, or for WebSockets
// (which browsers cannot give headers) from ?access_token=.
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return r.URL.Query().Get("access_token")
}

// readOffer reads an application/sdp body.
func readOffer(r *http.Request) (string, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/sdp" {
		return "", refusal.Newf(http.StatusUnsupportedMediaType,
			"Content-Type is %q; a WHIP/WHEP offer is application/sdp", mt)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxOfferBytes+1))
	if err != nil {
		return "", refusal.New(http.StatusBadRequest, "reading the offer: "+err.Error())
	}
	if len(b) > maxOfferBytes {
		return "", refusal.Newf(http.StatusRequestEntityTooLarge, "the offer is over %d bytes", maxOfferBytes)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return "", refusal.New(http.StatusBadRequest, "the offer is empty")
	}
	return string(b), nil
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	if err := s.publish(w, r); err != nil {
		s.log.Info("publish refused", "error", err, "remote", r.RemoteAddr)
		writeError(w, err)
	}
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) error {
	c, err := s.authorize(r)
	if err != nil {
		return err
	}
	if !c.Publish {
		// Refused before the stage is placed or a PeerConnection made.
		s.recordRefusal(c.StageID, c.ParticipantID, "JOIN_ERROR", "INSUFFICIENT_CAPABILITIES")
		return refusal.New(http.StatusForbidden, "the token does not allow publishing (no PUBLISH capability)")
	}
	offer, err := readOffer(r)
	if err != nil {
		return err
	}
	rm, err := s.openRoom(r.Context(), c, r, true)
	if err != nil {
		return err
	}
	release, err := rm.reserve(c.ParticipantID, publishPeer, "")
	if err != nil {
		return err
	}
	defer release()
	p, err := s.newPeerConn(rm, publishPeer, c.ParticipantID)
	if err != nil {
		return err
	}
	p.pc.OnTrack(p.onTrack)
	answer, err := p.negotiate(offer, nil)
	if err == nil {
		audio, video := acceptedMedia(answer)
		p.expected = audio + video
		if p.expected == 0 {
			rm.recordError(c.ParticipantID, "PUBLISH_ERROR", "INVALID_VIDEO_CODEC")
			err = refusal.New(http.StatusBadRequest,
				"the offer has no audio or video this stage accepts (Opus; VP8 or H.264 constrained baseline)")
		}
	}
	return s.admitPeer(w, r, rm, p, c, answer, err)
}

func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	if err := s.subscribe(w, r); err != nil {
		s.log.Info("subscribe refused", "error", err, "remote", r.RemoteAddr)
		writeError(w, err)
	}
}

func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) error {
	c, err := s.authorize(r)
	if err != nil {
		return err
	}
	if !c.Subscribe {
		return refusal.New(http.StatusForbidden, "the token does not allow subscribing (no SUBSCRIBE capability)")
	}
	offer, err := readOffer(r)
	if err != nil {
		return err
	}
	rm, err := s.subscribeRoom(r.Context(), c, r)
	if errors.Is(err, errNotHosted) {
		return refusal.Newf(http.StatusNotFound, "participant %q is not publishing on this stage",
			r.PathValue("participantId"))
	}
	if err != nil {
		return err
	}
	target := r.PathValue("participantId")
	pub := rm.publisher(target)
	if pub == nil && rm.origin != nil {
		if pub, err = rm.relay(r.Context(), target); err != nil {
			return err
		}
	}
	if pub == nil {
		rm.recordError(c.ParticipantID, "SUBSCRIBE_ERROR", "PUBLISHER_NOT_FOUND")
		return refusal.Newf(http.StatusNotFound, "participant %q is not publishing on this stage", target)
	}
	// A publisher that just joined may not send yet: wait a little for
	// its tracks rather than answer with fewer.
	select {
	case <-pub.ready:
	case <-pub.done:
	case <-time.After(s.cfg.TrackWait):
	case <-r.Context().Done():
		return r.Context().Err()
	}
	tracks := pub.snapshotTracks()
	if len(tracks) == 0 {
		return refusal.Newf(http.StatusNotFound,
			"participant %q has left or has sent no media yet; subscribe on its tracks-published event", target)
	}
	want := r.URL.Query().Get("layer")
	if err := validLayer(want, tracks); err != nil {
		return err
	}
	if rm.origin == nil && s.cluster != nil {
		rm.replaceRemote(c.ParticipantID, target, s.cluster.cfg.NodeID)
	}
	release, err := rm.reserve(c.ParticipantID, subscribePeer, target)
	if err != nil {
		return err
	}
	defer release()
	p, err := s.newPeerConn(rm, subscribePeer, c.ParticipantID)
	if err != nil {
		return err
	}
	p.remoteParticipantID = target
	if isRelay(c.ParticipantID) {
		p.edge = &edgeRef{node: c.Attributes[relayNodeAttr]}
	}
	answer, err := p.negotiate(offer, func() error {
		for _, t := range tracks {
			if t.sim != nil {
				if err := p.addSwitcher(t, want); err != nil {
					return err
				}
				continue
			}
			local, err := t.subscribe()
			if err != nil {
				return fmt.Errorf("track %s: %w", t.id, err)
			}
			sender, err := p.pc.AddTrack(local)
			if err != nil {
				return fmt.Errorf("add track %s: %w", t.id, err)
			}
			sub := t.fan.add(local)
			if !p.s.goTracked(func() { p.forwardRTCP(sender, t, sub) }) {
				t.fan.remove(sub)
			}
		}
		return nil
	})
	if err == nil && rm.origin != nil {
		err = s.cluster.joinAtOrigin(r.Context(), rm, c, p, r.UserAgent())
	}
	return s.admitPeer(w, r, rm, p, c, answer, err)
}

// subscribeRoom checks the token's stage still exists and returns the
// room a subscriber is served from: the host's, or in a cluster an edge
// room relaying from the host (edge.go); otherwise the error redirects r.
func (s *Server) subscribeRoom(ctx context.Context, c token.Claims, r *http.Request) (*room, error) {
	if s.cluster == nil {
		return s.openRoom(ctx, c, r, false)
	}
	if err := s.checkStage(ctx, c); err != nil {
		return nil, err
	}
	origin, err := s.cluster.subscriberHome(ctx, c, r)
	if err != nil {
		return nil, err
	}
	var rm *room
	if origin == nil {
		rm = s.room(c.StageID, c.StageARN)
	} else {
		rm = s.edgeRoom(c.StageID, c.StageARN, *origin)
	}
	if rm == nil {
		return nil, refusal.New(http.StatusServiceUnavailable, "the stage is moving or the server shutting down; retry")
	}
	return rm, nil
}

// openRoom checks the token's stage still exists and returns its room. In
// a cluster the stage must be hosted here: placed here when place is set
// and nobody hosts it; otherwise the error redirects r to its host.
func (s *Server) openRoom(ctx context.Context, c token.Claims, r *http.Request, place bool) (*room, error) {
	if err := s.checkStage(ctx, c); err != nil {
		return nil, err
	}
	if s.cluster != nil {
		if err := s.cluster.host(ctx, c.StageID, r, place); err != nil {
			return nil, err
		}
	}
	rm := s.room(c.StageID, c.StageARN)
	if rm == nil {
		return nil, refusal.New(http.StatusServiceUnavailable, "the stage server is shutting down")
	}
	return rm, nil
}

// checkStage refuses a token whose stage was deleted.
func (s *Server) checkStage(ctx context.Context, c token.Claims) error {
	ok, err := s.stageExists(ctx, c.StageID)
	if err != nil {
		return fmt.Errorf("look up stage %s: %w", c.StageID, err)
	}
	if !ok {
		return refusal.New(http.StatusNotFound, "the stage "+c.StageARN+" does not exist (deleted?)")
	}
	return nil
}

func (s *Server) newPeerConn(rm *room, kind peerKind, pid string) (*peer, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	s.pcs.add()
	p := newPeer(s, rm, kind, pid)
	p.pc = pc
	return p, nil
}

// admitPeer joins a negotiated peer to its room and answers the offer; on
// any error the peer connection is closed and nothing is left behind.
func (s *Server) admitPeer(w http.ResponseWriter, r *http.Request, rm *room, p *peer, c token.Claims, answer string,
	err error) error {
	if err == nil {
		// The token may have been revoked (or its key deleted) while the
		// offer was negotiated; a signal that came meanwhile is kept by
		// the room, which join checks.
		_, err = s.authorize(r)
	}
	if err == nil {
		err = rm.join(c, p, clientInfo{userAgent: r.UserAgent()})
		if errors.Is(err, errRoomGone) {
			// The room emptied while negotiating; the next one takes over.
			if rm = s.room(c.StageID, c.StageARN); rm == nil {
				err = refusal.New(http.StatusServiceUnavailable, "the stage server is shutting down")
			} else {
				p.r = rm
				err = rm.join(c, p, clientInfo{userAgent: r.UserAgent()})
			}
		}
	}
	if err != nil {
		if p.atOrigin {
			s.cluster.tellOrigin(rm, p, opLeave, "refused: "+err.Error())
		}
		_ = p.pc.Close()
		s.pcs.done()
		return err
	}
	p.pc.OnConnectionStateChange(p.onState)
	s.addSession(p)
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/session/"+p.resourceID)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	s.log.Info("peer joined", "stage", c.StageID, "participant", c.ParticipantID, "kind", p.kind, "session", p.resourceID)
	return nil
}

// addSwitcher subscribes p to a simulcast track, on the layer want names.
func (p *peer) addSwitcher(t *forwardTrack, want string) error {
	sw, local, err := t.subscribeSimulcast(want)
	if err != nil {
		return fmt.Errorf("track %s: %w", t.id, err)
	}
	sender, err := p.pc.AddTrack(local)
	if err != nil {
		return fmt.Errorf("add track %s: %w", t.id, err)
	}
	sw.start()
	if !p.s.goTracked(func() { p.forwardSimulcastRTCP(sender, sw) }) {
		sw.stop()
		return nil
	}
	p.tmu.Lock()
	p.switchers = append(p.switchers, sw)
	p.tmu.Unlock()
	return nil
}

// LayerRequest is the body of a PATCH of a subscribe session, which
// chooses the layer of its simulcast tracks: {"layer":"low"}.
type LayerRequest struct {
	Layer string `json:"layer"`
}

// LayerAnswer answers a LayerRequest: the RID of the layer each simulcast
// track switches to, by track id, on that layer's next keyframe (none for
// a publisher without simulcast).
type LayerAnswer struct {
	Layer  string            `json:"layer"`
	Tracks map[string]string `json:"tracks"`
}

// handlePatch chooses a subscribe session's layer (application/json);
// trickle ICE (application/trickle-ice-sdpfrag) is not supported.
func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, refusal.New(http.StatusMethodNotAllowed,
			"trickle ICE is not supported: send every candidate in the offer "+
				`(a PATCH of application/json {"layer":"low"} chooses a subscriber's simulcast layer)`))
		return
	}
	c, err := s.authorize(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	p := s.sessions[r.PathValue("id")]
	s.mu.Unlock()
	if p == nil || p.participantID != c.ParticipantID || p.r.stageID != c.StageID {
		writeError(w, refusal.New(http.StatusNotFound, "no such session of this participant"))
		return
	}
	var req LayerRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		writeError(w, refusal.New(http.StatusBadRequest, `the body is not {"layer":"<name>"}: `+err.Error()))
		return
	}
	if p.kind != subscribePeer {
		writeError(w, refusal.New(http.StatusBadRequest, "a publish session has no layers to choose"))
		return
	}
	if req.Layer == "" {
		writeError(w, refusal.New(http.StatusBadRequest, `no layer: send {"layer":"low"}, "medium" or "high"`))
		return
	}
	var tracks []*forwardTrack
	if pub := p.r.publisher(p.remoteParticipantID); pub != nil {
		tracks = pub.snapshotTracks()
	}
	if err := validLayer(req.Layer, tracks); err != nil {
		writeError(w, err)
		return
	}
	p.tmu.Lock()
	sws := append([]*switcher(nil), p.switchers...)
	p.tmu.Unlock()
	ans := LayerAnswer{Layer: req.Layer, Tracks: map[string]string{}}
	for _, sw := range sws {
		ans.Tracks[sw.t.id] = sw.choose(req.Layer)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	c, err := s.authorize(r)
	if err != nil {
		writeError(w, err)
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	p := s.sessions[id]
	s.mu.Unlock()
	if p == nil || p.participantID != c.ParticipantID || p.r.stageID != c.StageID {
		writeError(w, refusal.New(http.StatusNotFound, "no such session of this participant"))
		return
	}
	p.close("left (DELETE)")
	w.WriteHeader(http.StatusOK)
}

func newResourceID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// recordRefusal records an error event of participant pid on a stage this
// server has a room for (see recordErrorLocked); otherwise it is only
// logged.
func (s *Server) recordRefusal(stageID, pid, name, code string) {
	if rm := s.roomOf(stageID); rm != nil {
		rm.recordError(pid, name, code)
		return
	}
	s.log.Debug("participant refused", "stage", stageID, "participant", pid, "event", name, "code", code)
}

// recordError records an error event of participant pid (see
// recordErrorLocked).
func (r *room) recordError(pid, name, code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recordErrorLocked(pid, name, code)
}
