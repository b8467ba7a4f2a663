package stage

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/ivs"
)

type peerKind int

const (
	publishPeer peerKind = iota + 1
	subscribePeer
)

func (k peerKind) String() string {
	if k == publishPeer {
		return "publish"
	}
	return "subscribe"
}

// peer is one WHIP or WHEP peer connection of a participant.
type peer struct {
	s                   *Server
	r                   *room
	kind                peerKind
	resourceID          string
	participantID       string
	remoteParticipantID string // the publisher a subscribe peer receives
	pc                  *webrtc.PeerConnection
	started             bool // publish/subscribe started; guarded by r.mu
	// The cascade (edge.go, remote.go). On an edge: relay is a relayed
	// publisher's subscription on the origin, and atOrigin tells that the
	// origin admitted this subscriber. On the origin: edge is where a
	// subscriber served by an edge, or a relay, comes from.
	relay     *relayLink
	atOrigin  bool
	edge      *edgeRef
	closeOnce sync.Once
	done      chan struct{} // closed once the peer has left

	// Publish side: the tracks that flow, as they start.
	tmu       sync.Mutex
	tracks    []*forwardTrack
	switchers []*switcher // a subscribe peer's simulcast tracks
	expected  int         // tracks the answer accepted
	readyOnce sync.Once
	ready     chan struct{} // closed when the tracks flow (all, or after TrackWait)
}

// forwardTrack relays one published track to its subscribers through a
// fan-out.
type forwardTrack struct {
	id      string
	codec   webrtc.RTPCodecCapability
	remote  *webrtc.TrackRemote // nil for a local publisher's track
	pub     *peer
	fan     *fanout
	lastPLI atomic.Int64 // unix nanos of the last keyframe request sent upstream
	// sim is a simulcast track's layers (remote and fan are then nil); nil
	// for a track of one encoding.
	sim *simulcast
}

func (t *forwardTrack) kind() string {
	if strings.HasPrefix(t.codec.MimeType, "audio/") {
		return webrtc.RTPCodecTypeAudio.String()
	}
	return webrtc.RTPCodecTypeVideo.String()
}

// subscribe gives a subscriber its own track of this one.
func (t *forwardTrack) subscribe() (*webrtc.TrackLocalStaticRTP, error) {
	return webrtc.NewTrackLocalStaticRTP(t.codec, t.id, t.pub.participantID)
}

func newPeer(s *Server, r *room, kind peerKind, participantID string) *peer {
	return &peer{s: s, r: r, kind: kind, resourceID: newResourceID(), participantID: participantID,
		done: make(chan struct{}), ready: make(chan struct{})}
}

// negotiate applies the offer and returns the answer with every local
// candidate in it. addTracks runs between the two, for subscribe peers.
func (p *peer) negotiate(offer string, addTracks func() error) (string, error) {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", refusal.New(http.StatusBadRequest, "the offer is not a usable SDP offer: "+err.Error())
	}
	if addTracks != nil {
		if err := addTracks(); err != nil {
			return "", err
		}
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", refusal.New(http.StatusBadRequest, "no answer can be made to this offer: "+err.Error())
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return "", errors.New("ICE gathering did not complete in 5 s")
	}
	return p.pc.LocalDescription().SDP, nil
}

// acceptedMedia counts the answer's active audio and video sections.
func acceptedMedia(answer string) (audio, video int) {
	var d sdp.SessionDescription
	if d.Unmarshal([]byte(answer)) != nil {
		return 0, 0
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Port.Value == 0 {
			continue
		}
		if _, inactive := m.Attribute("inactive"); inactive {
			continue
		}
		switch m.MediaName.Media {
		case "audio":
			audio++
		case "video":
			video++
		}
	}
	return audio, video
}

// onTrack starts relaying a published track, or one encoding (RID) of a
// simulcast track.
func (p *peer) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	if remote.RID() != "" {
		p.onLayer(remote, receiver)
		return
	}
	kind := remote.Kind().String()
	p.tmu.Lock()
	ft := &forwardTrack{id: p.newTrackIDLocked(kind), codec: remote.Codec().RTPCodecCapability, remote: remote, pub: p,
		fan: p.s.newFanout()}
	p.tracks = append(p.tracks, ft)
	all := p.completeLocked() >= p.expected
	p.tmu.Unlock()
	p.trackStarted(all)
	ft.relay()
}

// onLayer starts relaying one encoding of a simulcast track; the track
// counts as started when all its encodings have.
func (p *peer) onLayer(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	p.tmu.Lock()
	var ft *forwardTrack
	for _, t := range p.tracks {
		if t.sim != nil && t.sim.receiver == receiver {
			ft = t
		}
	}
	first := ft == nil
	if first {
		ft = &forwardTrack{id: p.newTrackIDLocked(remote.Kind().String()), codec: remote.Codec().RTPCodecCapability,
			pub: p, sim: &simulcast{receiver: receiver, subs: map[*switcher]struct{}{}}}
		p.tracks = append(p.tracks, ft)
	}
	l := &layer{rid: remote.RID(), remote: remote, fan: p.s.newFanout()}
	if !ft.sim.addLayer(l) {
		p.tmu.Unlock()
		p.r.log.Info("simulcast encoding beyond the layers relayed: dropped", "participant", p.participantID,
			"rid", remote.RID())
		return
	}
	all := p.completeLocked() >= p.expected
	p.tmu.Unlock()
	if first || all {
		p.trackStarted(all)
	}
	if !first {
		ft.sim.rechoose() // subscribers that came before this layer
	}
	ft.relayLayer(l)
}

// newTrackIDLocked names a new track of kind: video, video2, ...
func (p *peer) newTrackIDLocked(kind string) string {
	id := kind
	for n := 2; p.hasTrack(id); n++ {
		id = fmt.Sprintf("%s%d", kind, n)
	}
	return id
}

// completeLocked counts the tracks that flow: a simulcast track once all
// its encodings do.
func (p *peer) completeLocked() int {
	n := 0
	for _, t := range p.tracks {
		if t.sim == nil || t.sim.complete() {
			n++
		}
	}
	return n
}

// trackStarted declares the tracks when all flow (all), or after
// TrackWait, and tells watchers of a track that starts later.
func (p *peer) trackStarted(all bool) {
	select {
	case <-p.ready:
		// A track that started after the others were declared: tell the
		// watchers, whose subscriptions lack it, to subscribe again.
		p.r.tracksChanged(p)
	default:
	}
	if all {
		p.markReady()
	} else {
		p.s.goTracked(func() {
			select {
			case <-time.After(p.s.cfg.TrackWait):
				p.markReady()
			case <-p.done:
			}
		})
	}
}

func (p *peer) hasTrack(id string) bool {
	for _, t := range p.tracks {
		if t.id == id {
			return true
		}
	}
	return false
}

// markReady declares the publisher's tracks subscribable.
func (p *peer) markReady() {
	p.readyOnce.Do(func() {
		close(p.ready)
		p.r.publishStarted(p)
	})
}

func (p *peer) trackInfo() []TrackInfo {
	p.tmu.Lock()
	defer p.tmu.Unlock()
	out := make([]TrackInfo, 0, len(p.tracks))
	for _, t := range p.tracks {
		ti := TrackInfo{TrackID: t.id, Kind: t.kind(), Codec: t.codec.MimeType}
		if t.sim != nil {
			ti.Layers = t.sim.info()
		}
		out = append(out, ti)
	}
	slices.SortFunc(out, func(a, b TrackInfo) int { return strings.Compare(a.TrackID, b.TrackID) })
	return out
}

func (p *peer) snapshotTracks() []*forwardTrack {
	p.tmu.Lock()
	defer p.tmu.Unlock()
	return append([]*forwardTrack(nil), p.tracks...)
}

// relay copies RTP from the publisher to the subscribers until the
// publisher's connection ends. Each packet is allocated once and shared by
// every subscriber's write and the NACK history.
//
// Header extensions are not forwarded: their ids are negotiated per peer
// connection, and the publisher's mean other things to a subscriber
// (Chrome's transport-cc is id 3, pion's repaired-rtp-stream-id, which
// makes a pion subscriber drop every video packet as an unknown repair
// stream). Each subscriber's sender adds its own transport-cc.
func (t *forwardTrack) relay() {
	defer t.fan.close()
	readPackets(t.remote, t.fan.write)
}

// readPackets reads remote until it ends, handing each packet, allocated
// on its own and without its header extensions, to each; a packet that
// does not parse is skipped. each must not change the packet.
func readPackets(remote *webrtc.TrackRemote, each func(*rtp.Packet)) {
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		pkt := &rtp.Packet{}
		if err := pkt.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			continue
		}
		pkt.Header.Extension = false
		pkt.Header.ExtensionProfile = 0
		pkt.Header.Extensions = nil
		each(pkt)
	}
}

// requestKeyframe asks the publisher for a keyframe, at most every 200 ms
// per track however many subscribers ask; of a simulcast track, a keyframe
// of each layer.
func (t *forwardTrack) requestKeyframe() {
	if t.sim != nil {
		for _, l := range t.sim.snapshot() {
			t.requestLayerKeyframe(l)
		}
		return
	}
	// A local publisher's track (RTMP ingest) has no RTCP path back to its
	// encoder: subscribers wait for its next keyframe.
	if t.remote == nil || t.remote.Kind() != webrtc.RTPCodecTypeVideo {
		return
	}
	now := time.Now().UnixNano()
	last := t.lastPLI.Load()
	if now-last < int64(200*time.Millisecond) || !t.lastPLI.CompareAndSwap(last, now) {
		return
	}
	_ = t.pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.remote.SSRC())}})
}

// forwardRTCP reads a subscriber's RTCP for one track until its connection
// ends: picture loss and full intra requests go to the publisher, and
// NACKs are answered from the track's history. Then the subscription ends.
func (p *peer) forwardRTCP(sender *webrtc.RTPSender, t *forwardTrack, sub *subscription) {
	defer t.fan.remove(sub)
	readRTCP(sender, t.requestKeyframe, func(n *rtcp.TransportLayerNack) { t.resend(sub, n) })
}

// readRTCP reads a sender's RTCP until its connection ends, handing on
// keyframe requests (PLI, FIR) and NACKs.
func readRTCP(sender *webrtc.RTPSender, keyframe func(), nack func(*rtcp.TransportLayerNack)) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				keyframe()
			case *rtcp.TransportLayerNack:
				nack(pkt)
			}
		}
	}
}

// resend writes the packets a NACK asks for again, those still kept.
func (t *forwardTrack) resend(sub *subscription, nack *rtcp.TransportLayerNack) {
	if sub == nil {
		return // subscribed as the publisher left
	}
	for _, pair := range nack.Nacks {
		for _, seq := range pair.PacketList() {
			if pkt := t.fan.lookup(seq); pkt != nil {
				sub.send(pkt)
			}
		}
	}
}

// onState follows the connection: a subscribe peer starts when connected,
// and any peer leaves when its connection fails (ICE/DTLS timeout) or
// closes.
func (p *peer) onState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		if p.kind == subscribePeer {
			p.r.subscribeStarted(p)
			if pub := p.r.publisher(p.remoteParticipantID); pub != nil {
				for _, t := range pub.snapshotTracks() {
					t.requestKeyframe()
				}
			}
		}
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		reason := "connection closed"
		if st == webrtc.PeerConnectionStateFailed {
			reason = "connection lost: no ICE/DTLS traffic within the timeout"
		}
		// pion calls this on its own goroutine; closing there is safe, but
		// the close is handed to a tracked one so Close can wait for it.
		if !p.s.goTracked(func() { p.close(reason) }) {
			p.close(reason)
		}
	}
}

// close ends the peer connection and records the leave. Subscribers of a
// publisher that leaves are closed with it.
func (p *peer) close(reason string) {
	p.closeOnce.Do(func() {
		p.s.forgetSession(p)
		p.r.leave(p, reason)
		close(p.done)
		// A local publisher has no peer connection: its owner stops on done,
		// and its tracks' writers end here (a WHIP track's when its relay does).
		if p.pc == nil {
			for _, t := range p.snapshotTracks() {
				if t.fan != nil {
					t.fan.close()
				}
			}
		}
		if p.pc != nil {
			if err := p.pc.Close(); err != nil {
				p.r.log.Debug("close peer connection", "participant", p.participantID, "error", err)
			}
			p.s.pcs.done()
		}
		if p.relay != nil {
			p.relay.deleteUpstream()
		}
		if p.edge != nil {
			p.s.cluster.endRemote(p, reason)
		}
		p.r.log.Info("peer left", "participant", p.participantID, "kind", p.kind, "reason", reason)
		if p.kind == publishPeer {
			for _, sp := range p.r.subscribersOf(p.participantID) {
				sp.close("the publisher left")
			}
		}
	})
}

// clientInfo is what a participant's HTTP request says of its client, or
// for a local publisher, its protocol and ingest configuration.
type clientInfo struct {
	userAgent string
	protocol  string // "" for WHIP
	ingestARN string
}

func (c clientInfo) fill(rec *ivs.Participant) {
	if c.protocol != "" {
		rec.Protocol = c.protocol
		rec.IngestConfigurationARN = c.ingestARN
	}
	ua := c.userAgent
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if i := strings.Index(ua, b.token); i >= 0 {
			rec.BrowserName = b.name
			rec.BrowserVersion = versionAt(ua[i+len(b.token):])
			if b.name == "Safari" {
				if j := strings.Index(ua, "Version/"); j >= 0 {
					rec.BrowserVersion = versionAt(ua[j+len("Version/"):])
				}
			}
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone OS", "iOS"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Linux",
			"Linux"}, {"CrOS", "ChromeOS"},
	} {
		if strings.Contains(ua, o.token) {
			rec.OSName = o.name
			break
		}
	}
	if rec.BrowserName == "" && ua != "" {
		rec.SDKVersion = versionAt(ua) // e.g. stagehand-publish/1.0
		if i := strings.IndexByte(ua, '/'); i > 0 {
			rec.SDKVersion = versionAt(ua[i+1:])
		}
	}
}

func versionAt(s string) string {
	end := strings.IndexAny(s, " ;)")
	if end < 0 {
		end = len(s)
	}
	if end > 32 {
		end = 32
	}
	return s[:end]
}
