// Package stage is the SFU participants publish into and composition
// workers subscribe to: WHIP publish and per-publisher WHEP subscribe over
// pion/webrtc, authenticated by participant tokens, an events WebSocket
// that tells subscribers who is on the stage and what they publish, and the
// record of sessions, participants and participant events that the API
// serves (store tables Sessions, Participants, Events).
//
// HTTP surface, under the stage server's base URL:
//
//	POST   /whip                  publish (Bearer token with PUBLISH); 201 + SDP answer
//	POST   /whep/{participantId}  subscribe to one publisher (SUBSCRIBE); 201 + SDP answer;
//	                              ?layer= a simulcast layer (simulcast.go)
//	PATCH  /session/{id}          {"layer":"low"} (application/json): switch a WHEP
//	                              session's simulcast layer; 200 + LayerAnswer
//	DELETE /session/{id}          leave (the Location of a WHIP or WHEP answer)
//	GET    /events                WebSocket of stage events (?access_token= or Bearer)
//
// What one participant (one token) may hold is bounded (limits.go, Config):
// past a limit an offer is refused 409 or 429 before any PeerConnection is
// made (docs/security/stage.md).
//
// Offers must carry all their ICE candidates (no trickle): answers are sent
// once this side's gathering is complete, which on a LAN takes
// milliseconds.
//
// A stage is hosted by one stage server at a time (rooms are in memory);
// in a cluster the others serve its subscribers by relaying its publishers
// from the host (cluster.go, edge.go, remote.go).
//
// The stage imports no control-plane package: tokens are checked by the
// Verifier it is given, and the API's disconnect signals arrive as
// stagesignal messages on NATS.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/stagesignal"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
)

// Verifier checks participant tokens; tokenstore.Verifier is the one used.
// Besides the token package's reasons, it refuses with
// tokenstore.ErrRevoked and tokenstore.ErrForeignStage.
type Verifier interface {
	Verify(ctx context.Context, tok string) (token.Claims, error)
}

// Config configures a stage server. Zero values take the defaults.
type Config struct {
	// ICEIPs, when set, are the only local addresses ICE offers (e.g.
	// 127.0.0.1 for a loopback-only server). Default: every interface,
	// loopback included.
	ICEIPs []string
	// UDPAddr, when set, is the one UDP address (IP:port) all media of
	// every peer goes through, instead of a port per peer: what a
	// firewall, container or Kubernetes Service has to open. Its IP must
	// be one the clients reach (not a wildcard); it is the only ICE
	// candidate offered.
	UDPAddr string
	// PublicAddr, "IP" or "IP:port", is what the stage's ICE candidates
	// say instead of the local address, for a node behind a 1:1 NAT or a
	// Kubernetes Service (a NodePort maps the port too).
	PublicAddr string
	// ICEDisconnectedTimeout and ICEFailedTimeout decide how fast a peer
	// that vanished without DELETE is noticed: it leaves the stage after
	// their sum. Defaults 3 s and 7 s.
	ICEDisconnectedTimeout time.Duration
	ICEFailedTimeout       time.Duration
	// MaxPublishers per stage (IVS: 12) and MaxSubscribers, the connected
	// participants that do not publish (IVS's quota: 10,000). Defaults 12
	// and 10,000.
	MaxPublishers  int
	MaxSubscribers int
	// TrackWait is how long a subscribe waits for a publisher's tracks to
	// start flowing. Default 3 s.
	TrackWait time.Duration
	// Limits per participant (per token), each checked before any
	// PeerConnection is made (docs/security/stage.md):
	// MaxSubscriptionsPerPublisher WHEP peers, live or being negotiated,
	// to one publisher (past it: 409); MaxSubscriptions to all publishers
	// together (429); MaxEventSockets events WebSockets open on this node
	// (429). Defaults 1, MaxPublishers + 4 and 4.
	MaxSubscriptionsPerPublisher int
	MaxSubscriptions             int
	MaxEventSockets              int
	// MaxErrorEvents bounds the error events (JOIN_ERROR, SUBSCRIBE_ERROR…)
	// recorded for one participant in one session; the same error is
	// recorded at most once every ErrorEventInterval. Defaults 20 and 10 s.
	MaxErrorEvents     int
	ErrorEventInterval time.Duration
	// OnPublishStarted, when set, is called on a goroutine of its own
	// (that Close waits for) after each PUBLISH_STARTED event: individual
	// participant recording starts there.
	OnPublishStarted func(ctx context.Context, stageID, sessionID, participantID string)
	// Cluster, when set, makes the server one node of a stage cluster
	// (cluster.go); nil: it hosts every stage it is asked for.
	Cluster *ClusterConfig
	Logger  *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.ICEDisconnectedTimeout <= 0 {
		c.ICEDisconnectedTimeout = 3 * time.Second
	}
	if c.ICEFailedTimeout <= 0 {
		c.ICEFailedTimeout = 7 * time.Second
	}
	if c.MaxPublishers <= 0 {
		c.MaxPublishers = 12
	}
	if c.MaxSubscribers <= 0 {
		c.MaxSubscribers = 10000
	}
	if c.TrackWait <= 0 {
		c.TrackWait = 3 * time.Second
	}
	return c.limitDefaults()
}

func (c Config) limitDefaults() Config {
	if c.MaxSubscriptionsPerPublisher <= 0 {
		c.MaxSubscriptionsPerPublisher = 1
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = c.MaxPublishers + 4
	}
	if c.MaxEventSockets <= 0 {
		c.MaxEventSockets = 4
	}
	if c.MaxErrorEvents <= 0 {
		c.MaxErrorEvents = 20
	}
	if c.ErrorEventInterval <= 0 {
		c.ErrorEventInterval = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports configuration errors before anything starts.
func (c Config) Validate() error {
	for _, ip := range c.ICEIPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("stage: ICE address %q is not an IP address", ip)
		}
	}
	if c.PublicAddr != "" {
		if _, _, err := publicAddr(c.PublicAddr); err != nil {
			return err
		}
	}
	return nil
}

// publicAddr splits "IP" or "IP:port" (port 0: unchanged).
func publicAddr(s string) (ip string, port int, err error) {
	host, p, splitErr := net.SplitHostPort(s)
	if splitErr != nil {
		host, p = s, "0"
	}
	port, convErr := strconv.Atoi(p)
	if net.ParseIP(host) == nil || convErr != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("stage: public address %q: want IP or IP:port", s)
	}
	return host, port, nil
}

// Server is a stage server. It is an http.Handler; Close ends every peer
// connection and waits for their goroutines.
type Server struct {
	cfg      Config
	verifier Verifier
	store    *store.Store
	log      *slog.Logger
	api      *webrtc.API
	media    *mediaSocket    // nil without Config.UDPAddr
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	sub      *nats.Subscription
	cluster  *cluster // nil when not clustered

	pcs           pcCounter     // PeerConnections made and open, for metrics
	fanoutDropped atomic.Uint64 // packets the fan-outs' writer shards dropped

	mu       sync.Mutex
	rooms    map[string]*room                     // by stage id
	sessions map[string]*peer                     // by resource id (Location)
	sockets  map[string]map[*eventSocket]struct{} // events WebSockets by stage id
	closed   bool
}

// disconnectSubjects is what the server subscribes to for the API's
// DisconnectParticipant and DeleteStage signals: every stage's.
var disconnectSubjects = stagesignal.DisconnectSubject(stagesignal.Everyone)

// New creates a stage server. nc may be nil (no DisconnectParticipant
// signals, as in unit tests).
func New(cfg Config, v Verifier, st *store.Store, nc *nats.Conn) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var media *mediaSocket
	var err error
	if cfg.UDPAddr != "" {
		if media, err = listenMedia(cfg.UDPAddr); err != nil {
			return nil, err
		}
	}
	wapi, err := newWebRTCAPI(cfg, media)
	if err != nil {
		if media != nil {
			media.close()
		}
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, verifier: v, store: st, log: cfg.Logger.With("component", "stage"), api: wapi, media: media,
		ctx: ctx, cancel: cancel, rooms: map[string]*room{}, sessions: map[string]*peer{},
		sockets: map[string]map[*eventSocket]struct{}{}}
	if nc != nil {
		s.sub, err = nc.Subscribe(disconnectSubjects, s.onDisconnect)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("stage: subscribe to disconnect signals: %w", err)
		}
	}
	if cfg.Cluster != nil {
		if err := s.joinCluster(*cfg.Cluster, st, nc); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) joinCluster(cfg ClusterConfig, st *store.Store, nc *nats.Conn) error {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	cl, err := newCluster(ctx, s, cfg, st, nc)
	if err != nil {
		return err
	}
	s.cluster = cl
	s.goTracked(func() { cl.run(s.ctx) })
	return nil
}

// Drain hands the stages this node hosts to other nodes of its cluster:
// their participants and watchers are told to reconnect, which brings them
// to another node. Call it before Close on a SIGTERM; without a cluster it
// does nothing.
func (s *Server) Drain(ctx context.Context) {
	if s.cluster != nil {
		s.cluster.drain(ctx)
	}
}

// NodeID is this node's id in its stage cluster ("" when not clustered).
func (s *Server) NodeID() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.cfg.NodeID
}

func newWebRTCAPI(cfg Config, media *mediaSocket) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return nil, err
	}
	ir, err := interceptors(m)
	if err != nil {
		return nil, fmt.Errorf("stage: interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, time.Second)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetSRTPProtectionProfiles(srtpProfiles...)
	if media != nil {
		se.SetICEUDPMux(media.mux)
	}
	if cfg.PublicAddr != "" {
		ip, port, _ := publicAddr(cfg.PublicAddr) // checked by Validate
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{External: []string{ip},
			AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace,
			NewPort: port}); err != nil {
			return nil, fmt.Errorf("stage: public address: %w", err)
		}
	}
	if len(cfg.ICEIPs) > 0 {
		allowed := map[string]bool{}
		for _, ip := range cfg.ICEIPs {
			allowed[net.ParseIP(ip).String()] = true
		}
		se.SetIPFilter(func(ip net.IP) bool { return allowed[ip.String()] })
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// srtpProfiles are the SRTP protection profiles the stage offers, in its
// order of preference. Every packet to every subscriber is encrypted, and
// AES-128-GCM costs the least with AES-NI: pion's default puts
// AES-256-GCM first (four more AES rounds a block), and when the stage
// answers, the offerer (the DTLS server) picks by its own preference among
// these, so AES-256-GCM is left out rather than put second.
// AES_CM_128_HMAC_SHA1_80, which every WebRTC endpoint implements (RFC
// 8827), stays as the fallback.
var srtpProfiles = []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}

// interceptors are pion's defaults but the NACK responder and the
// statistics interceptor. The NACK responder would keep a copy of every
// packet sent to every subscriber (1.3 MB a subscriber at 1.5 Mbit/s),
// where the fan-out keeps one history per track and answers NACKs from
// it. The statistics interceptor only feeds PeerConnection.GetStats,
// which the stage never calls, at a clock read, a lock and a header
// clone per packet per subscriber. NACKs to publishers, RTCP sender and
// receiver reports and transport-wide congestion control stay as browsers
// expect them.
func interceptors(m *webrtc.MediaEngine) (*interceptor.Registry, error) {
	ir := &interceptor.Registry{}
	generator, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(generator)
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(m, ir); err != nil {
		return nil, err
	}
	return ir, nil
}

// Codecs the stage forwards: Opus audio, VP8 and H.264 (constrained
// baseline and baseline, packetization mode 1) video.
var codecs = []struct {
	kind webrtc.RTPCodecType
	p    webrtc.RTPCodecParameters
}{
	{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111}},
	{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 96}},
	{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102}},
	{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"}, PayloadType: 104}},
}

var videoFeedback = []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"},
	{Type: "nack"}, {Type: "nack", Parameter: "pli"}}

func registerCodecs(m *webrtc.MediaEngine) error {
	for _, c := range codecs {
		if err := m.RegisterCodec(c.p, c.kind); err != nil {
			return fmt.Errorf("stage: register %s: %w", c.p.MimeType, err)
		}
	}
	return nil
}

// Close disconnects everyone, records them as having left, and waits for
// every goroutine the server started.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
	for _, r := range rooms {
		r.disconnect("*", "server shutting down")
	}
	s.cancel()
	s.wg.Wait()
	if s.cluster != nil {
		s.cluster.close()
	}
	if s.media != nil {
		s.media.close()
	}
}

// goTracked runs f on a goroutine that Close waits for. Once Close has
// begun it starts nothing and reports false: Close is then ending every
// peer itself.
func (s *Server) goTracked(f func()) bool {
	if !s.track() {
		return false
	}
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// track counts one more goroutine for Close to wait for, unless Close has
// begun.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// room returns the stage's room, creating it; nil after Close.
func (s *Server) room(stageID, stageARN string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	r := s.rooms[stageID]
	if r == nil {
		if s.cluster != nil && !s.cluster.holds(stageID) {
			return nil
		}
		r = newRoom(s, stageID, stageARN)
		if s.cluster != nil {
			// Nobody else has the new room yet: its lock is free.
			r.mu.Lock()
			r.publishLocked(r.snapshotLocked())
			r.mu.Unlock()
		}
		s.rooms[stageID] = r
	}
	return r
}

// roomOf returns the stage's room, nil if there is none.
func (s *Server) roomOf(stageID string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[stageID]
}

func (s *Server) allRooms() []*room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// load is what this node carries, as its cluster compares nodes.
func (s *Server) load() nodeInfo {
	s.mu.Lock()
	n := nodeInfo{Peers: len(s.sessions)}
	s.mu.Unlock()
	for _, r := range s.allRooms() {
		r.mu.Lock()
		n.Participants += r.connected()
		r.mu.Unlock()
		n.Stages++
	}
	return n
}

// dropRoom forgets a room that has become empty.
func (s *Server) dropRoom(r *room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.stageID] == r {
		delete(s.rooms, r.stageID)
	}
}

func (s *Server) addSession(p *peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[p.resourceID] = p
}

func (s *Server) forgetSession(p *peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[p.resourceID] == p {
		delete(s.sessions, p.resourceID)
	}
}

// storeCtx bounds a store call made on behalf of the stage.
func (s *Server) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Second)
}

// stageExists reports whether the API still has the stage.
func (s *Server) stageExists(ctx context.Context, stageID string) (bool, error) {
	_, err := s.store.Stages.Get(ctx, stageID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ActiveStages lists the stages this server hosts now (not those whose
// subscribers it serves as an edge), for tests and metrics.
func (s *Server) ActiveStages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.rooms))
	for id, r := range s.rooms {
		if r.origin == nil {
			ids = append(ids, id)
		}
	}
	return ids
}
