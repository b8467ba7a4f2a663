package stage

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/refusal"
)

// Simulcast (IVS "layered encoding").
//
// A publisher may send one video track as up to three encodings, each
// with a RID (a=rid, a=simulcast; pion calls OnTrack once per RID). The
// stage makes them one published track with layers, each relayed through
// a fan-out of its own. A subscriber of such a track is a member of one
// layer's fan-out at a time, through a switcher: the switcher rewrites
// sequence numbers and timestamps so that the subscriber sees one stream
// whichever layer it comes from, changes layer on the new layer's next
// keyframe, and maps the subscriber's NACKs back to the layer that sent
// the packet. A track without RIDs has no switcher: its subscribers'
// tracks are in its fan-out as they always were.
//
// Layers are named by rank: "low", "medium" and "high" (with two layers,
// "medium" is the higher one; with one, every name is that layer). The
// RIDs "q", "h" and "f" (Chrome's and pion's, quarter, half and full size)
// rank in that order; other RIDs rank after them, alphabetically. A layer
// may also be asked for by its RID, or as "<N>p": the smallest layer whose
// height (known from its VP8 keyframes) is at least N, else the highest.

// maxLayers is how many encodings of one track the stage relays.
const maxLayers = 3

// layerNames are the rank names a subscriber may ask for.
var layerNames = []string{"low", "medium", "high"}

// layer is one encoding of a simulcast track.
type layer struct {
	rid     string
	slot    int // index in the switchers' arrays, in the order layers started
	remote  *webrtc.TrackRemote
	fan     *fanout
	lastPLI atomic.Int64
	width   atomic.Int32 // from the last VP8 keyframe; 0 until one is seen
	height  atomic.Int32
}

// simulcast is the layers of one published track.
type simulcast struct {
	receiver *webrtc.RTPReceiver
	mu       sync.Mutex
	layers   []*layer // sorted low to high
	subs     map[*switcher]struct{}
}

func ridRank(rid string) int {
	switch rid {
	case "q":
		return 0
	case "h":
		return 1
	case "f":
		return 2
	}
	return 3
}

// addLayer adds a started encoding; it returns nil beyond maxLayers.
func (sc *simulcast) addLayer(l *layer) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.layers) >= maxLayers {
		return false
	}
	l.slot = len(sc.layers)
	sc.layers = append(sc.layers, l)
	slices.SortFunc(sc.layers, func(a, b *layer) int {
		if d := ridRank(a.rid) - ridRank(b.rid); d != 0 {
			return d
		}
		return strings.Compare(a.rid, b.rid)
	})
	return true
}

// rechoose moves the subscribers to the layer they asked for, when a
// layer that started late is the one their name now gives.
func (sc *simulcast) rechoose() {
	sc.mu.Lock()
	subs := make([]*switcher, 0, len(sc.subs))
	for sw := range sc.subs {
		subs = append(subs, sw)
	}
	sc.mu.Unlock()
	for _, sw := range subs {
		sw.mu.Lock()
		want := sw.want
		sw.mu.Unlock()
		sw.choose(want)
	}
}

func (sc *simulcast) snapshot() []*layer {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]*layer(nil), sc.layers...)
}

// complete reports whether every encoding the offer declared has started.
func (sc *simulcast) complete() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.layers) >= min(maxLayers, len(sc.receiver.Tracks()))
}

// validLayer checks a requested layer name against any track: the rank
// names, a height, or a RID of one of the tracks' layers.
func validLayer(name string, tracks []*forwardTrack) error {
	if name == "" || slices.Contains(layerNames, name) {
		return nil
	}
	if _, ok := parseHeight(name); ok {
		return nil
	}
	var rids []string
	for _, t := range tracks {
		if t.sim == nil {
			continue
		}
		for _, l := range t.sim.snapshot() {
			if l.rid == name {
				return nil
			}
			rids = append(rids, l.rid)
		}
	}
	valid := strings.Join(layerNames, ", ") + ", or a height such as 360p"
	if len(rids) > 0 {
		valid += ", or a RID: " + strings.Join(rids, ", ")
	}
	return refusal.Newf(http.StatusBadRequest, "unknown layer %q: the layers are %s", name, valid)
}

// parseHeight reads a height layer name, "360p".
func parseHeight(name string) (int, bool) {
	digits, ok := strings.CutSuffix(name, "p")
	if !ok {
		return 0, false
	}
	h, err := strconv.Atoi(digits)
	if err != nil || h <= 0 || strconv.Itoa(h) != digits {
		return 0, false
	}
	return h, true
}

// pick returns the layer a name asks for among layers (sorted low to
// high, at least one): "" is the highest.
func pick(layers []*layer, name string) *layer {
	switch name {
	case "", "high":
		return layers[len(layers)-1]
	case "low":
		return layers[0]
	case "medium":
		return layers[len(layers)/2]
	}
	if h, ok := parseHeight(name); ok {
		for _, l := range layers {
			if int(l.height.Load()) >= h {
				return l
			}
		}
		return layers[len(layers)-1]
	}
	for _, l := range layers {
		if l.rid == name {
			return l
		}
	}
	return layers[len(layers)-1]
}

// relayLayer copies one encoding's RTP to its fan-out, as relay does, and
// notes its picture size from its keyframes.
func (t *forwardTrack) relayLayer(l *layer) {
	defer l.fan.close()
	vp8 := strings.EqualFold(t.codec.MimeType, webrtc.MimeTypeVP8)
	readPackets(l.remote, func(pkt *rtp.Packet) {
		if vp8 {
			if w, h, ok := vp8KeyframeSize(pkt.Payload); ok {
				l.width.Store(int32(w))
				if l.height.Swap(int32(h)) != int32(h) {
					// A subscriber that asked for a height may want
					// another layer now that this one's size is known.
					t.sim.rechoose()
				}
			}
		}
		l.fan.write(pkt)
	})
}

// requestLayerKeyframe asks the publisher for a keyframe of one layer, at
// most every 200 ms per layer.
func (t *forwardTrack) requestLayerKeyframe(l *layer) {
	if l.remote == nil {
		return // a test's layer
	}
	now := time.Now().UnixNano()
	last := l.lastPLI.Load()
	if now-last < int64(200*time.Millisecond) || !l.lastPLI.CompareAndSwap(last, now) {
		return
	}
	_ = t.pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(l.remote.SSRC())}})
}

// vp8Payload returns the VP8 frame data of a packet that starts a frame.
func vp8Payload(p []byte) ([]byte, bool) {
	if len(p) < 1 || p[0]&0x10 == 0 || p[0]&0x07 != 0 { // S bit, partition 0
		return nil, false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extension byte
		if len(p) < 2 {
			return nil, false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture id
			if len(p) <= i {
				return nil, false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K
			i++
		}
	}
	if len(p) <= i {
		return nil, false
	}
	return p[i:], true
}

// vp8Keyframe reports whether a VP8 RTP payload starts a keyframe.
func vp8Keyframe(p []byte) bool {
	f, ok := vp8Payload(p)
	return ok && f[0]&0x01 == 0
}

// vp8KeyframeSize returns the picture size a VP8 keyframe's first packet
// gives.
func vp8KeyframeSize(p []byte) (w, h int, ok bool) {
	f, ok := vp8Payload(p)
	if !ok || len(f) < 10 || f[0]&0x01 != 0 || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0, false
	}
	return int(f[6]) | int(f[7]&0x3f)<<8, int(f[8]) | int(f[9]&0x3f)<<8, true
}

// h264Keyframe reports whether an H.264 RTP payload starts a keyframe: an
// IDR slice or a parameter set, alone, in a STAP-A or starting a FU-A.
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch typ := p[0] & 0x1f; typ {
	case 5, 7:
		return true
	case 24: // STAP-A
		for i := 1; i+2 < len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			if t := p[i+2] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += 2 + n
		}
	case 28: // FU-A
		return len(p) > 1 && p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}

// switcher is one subscriber's track of a simulcast track: it writes one
// layer at a time, as one stream.
type switcher struct {
	t        *forwardTrack
	track    rtpWriter // the subscriber's *webrtc.TrackLocalStaticRTP
	keyframe func([]byte) bool

	mu      sync.Mutex
	members [maxLayers]*subscription // the layers' fan-outs it is in, by slot
	cur     *layer                   // the layer written
	next    *layer                   // the layer switched to on its next keyframe; nil when none
	want    string                   // the name asked for
	stopped bool                     // the subscriber left: in no fan-out any more
	started bool                     // a packet was written
	lastSeq uint16                   // the last sequence number and timestamp written
	lastTS  uint32
	lastAt  time.Time
	seqOff  uint16 // written = received + offset, for cur
	tsOff   uint32
	// pkt is the packet written: a copy of the shared one, rewritten. It
	// is the switcher's (guarded by mu), so that a write allocates nothing.
	pkt        rtp.Packet
	lastMarker bool // the last packet written ended a frame
	// The next layer's packets from its keyframe on, while the frame
	// being written has not ended.
	hold   [holdPackets]*rtp.Packet
	held   int
	holdAt time.Time
	// The layer before the last switch, its offsets, and the first
	// sequence number written from cur: a NACK of an earlier one is that
	// layer's, back to prevFrom, where prev started (none before the
	// second switch: the first layer's packets go back as far as its
	// history).
	prev       *layer
	prevSeqOff uint16
	prevTSOff  uint32
	switchSeq  uint16
	prevFrom   uint16
	switches   int
}

// layerWriter is a switcher's member of one layer's fan-out.
type layerWriter struct {
	sw *switcher
	l  *layer
}

func (w layerWriter) WriteRTP(p *rtp.Packet) error { w.sw.write(w.l, p); return nil }

// subscribeSimulcast gives a subscriber a switcher on the layer want
// names.
func (t *forwardTrack) subscribeSimulcast(want string) (*switcher, *webrtc.TrackLocalStaticRTP, error) {
	local, err := webrtc.NewTrackLocalStaticRTP(t.codec, t.id, t.pub.participantID)
	if err != nil {
		return nil, nil, err
	}
	return newSwitcher(t, local, want), local, nil
}

func newSwitcher(t *forwardTrack, track rtpWriter, want string) *switcher {
	sw := &switcher{t: t, track: track, keyframe: vp8Keyframe, want: want}
	if strings.EqualFold(t.codec.MimeType, webrtc.MimeTypeH264) {
		sw.keyframe = h264Keyframe
	}
	return sw
}

// start joins the switcher to its layer's fan-out.
func (sw *switcher) start() {
	sc := sw.t.sim
	l := pick(sc.snapshot(), sw.want)
	sw.mu.Lock()
	sw.cur = l
	sw.members[l.slot] = l.fan.add(layerWriter{sw, l})
	sw.mu.Unlock()
	// Listed once it has a layer: rechoose may then move it.
	sc.mu.Lock()
	sc.subs[sw] = struct{}{}
	sc.mu.Unlock()
}

// stop leaves every layer's fan-out.
func (sw *switcher) stop() {
	sc := sw.t.sim
	sc.mu.Lock()
	delete(sc.subs, sw)
	layers := append([]*layer(nil), sc.layers...)
	sc.mu.Unlock()
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.stopped = true
	for _, l := range layers {
		l.fan.remove(sw.members[l.slot])
		sw.members[l.slot] = nil
	}
	clear(sw.hold[:sw.held])
	sw.held = 0
}

// choose switches to the layer name asks for, from that layer's next
// keyframe, which it requests. It returns the layer's RID.
func (sw *switcher) choose(name string) string {
	layers := sw.t.sim.snapshot()
	l := pick(layers, name)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.stopped {
		return l.rid
	}
	sw.want = name
	if sw.next != l {
		clear(sw.hold[:sw.held])
		sw.held = 0
	}
	if sw.next != nil && sw.next != l && sw.next != sw.cur {
		sw.next.fan.remove(sw.members[sw.next.slot])
		sw.members[sw.next.slot] = nil
	}
	if l == sw.cur {
		sw.next = nil
		return l.rid
	}
	sw.next = l
	if sw.members[l.slot] == nil {
		sw.members[l.slot] = l.fan.add(layerWriter{sw, l})
	}
	sw.t.requestLayerKeyframe(l)
	return l.rid
}

// requestKeyframe asks for a keyframe of the layer written, and of the one
// switched to.
func (sw *switcher) requestKeyframe() {
	sw.mu.Lock()
	cur, next := sw.cur, sw.next
	sw.mu.Unlock()
	if cur != nil {
		sw.t.requestLayerKeyframe(cur)
	}
	if next != nil {
		sw.t.requestLayerKeyframe(next)
	}
}

// write sends a packet of layer l if it is the layer written, or switches
// to l when it is the layer asked for and p starts a keyframe. The packet
// is shared: its header is copied, rewritten and written, without an
// allocation.
//
// A switch waits for the end of the frame being written (its marker), so
// that the subscriber gets no cut frame: until then the new layer's
// packets are held (the shared packets, by reference), up to holdPackets
// or holdFor.
func (sw *switcher) write(l *layer, p *rtp.Packet) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if l == sw.cur {
		sw.emit(p)
		if p.Marker && sw.held > 0 {
			sw.commit()
		}
		return
	}
	if l != sw.next {
		return
	}
	if sw.held == 0 && !sw.keyframe(p.Payload) {
		// Asked again (every 200 ms at most) until it comes: a request
		// or the keyframe's first packet may have been lost.
		sw.t.requestLayerKeyframe(l)
		return
	}
	if sw.held == 0 {
		sw.holdAt = time.Now()
	}
	sw.hold[sw.held] = p
	sw.held++
	if !sw.started || sw.lastMarker || sw.held == len(sw.hold) || time.Since(sw.holdAt) > holdFor {
		sw.commit()
	}
}

// holdPackets and holdFor bound how long a switch waits for the frame
// being written to end: a frame of about 150 KB, or two frames' time at
// 15 fps.
const (
	holdPackets = 128
	holdFor     = 150 * time.Millisecond
)

// commit switches to the next layer from its held packets, and writes
// them.
func (sw *switcher) commit() {
	sw.switchTo(sw.next, sw.hold[0])
	for i := range sw.held {
		sw.emit(sw.hold[i])
		sw.hold[i] = nil
	}
	sw.held = 0
}

// emit writes p, of the current layer, renumbered.
func (sw *switcher) emit(p *rtp.Packet) {
	sw.pkt = *p
	sw.pkt.SequenceNumber += sw.seqOff
	sw.pkt.Timestamp += sw.tsOff
	sw.started, sw.lastSeq, sw.lastTS, sw.lastMarker = true, sw.pkt.SequenceNumber, sw.pkt.Timestamp, p.Marker
	if p.Marker || sw.lastAt.IsZero() {
		// When the last frame ended (its packets share a timestamp): a
		// switch adds the time since to the timestamps.
		sw.lastAt = time.Now()
	}
	_ = sw.track.WriteRTP(&sw.pkt)
}

// switchTo makes l the layer written from its packet p on: p follows the
// last packet written in sequence, and its timestamp the last one by the
// time that has passed.
func (sw *switcher) switchTo(l *layer, p *rtp.Packet) {
	old := sw.cur
	sw.prev, sw.prevSeqOff, sw.prevTSOff, sw.prevFrom = old, sw.seqOff, sw.tsOff, sw.switchSeq
	sw.switches++
	if sw.started {
		elapsed := uint32(max(1, time.Since(sw.lastAt).Milliseconds()) * int64(sw.t.codec.ClockRate) / 1000)
		sw.seqOff = sw.lastSeq + 1 - p.SequenceNumber
		sw.tsOff = sw.lastTS + elapsed - p.Timestamp
	}
	sw.switchSeq = p.SequenceNumber + sw.seqOff
	sw.cur, sw.next = l, nil
	old.fan.remove(sw.members[old.slot])
	sw.members[old.slot] = nil
}

// resend writes again the packets a NACK asks for, from the layer each
// was written from, if still kept.
func (sw *switcher) resend(nack *rtcp.TransportLayerNack) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for _, pair := range nack.Nacks {
		for _, seq := range pair.PacketList() {
			l, seqOff, tsOff := sw.cur, sw.seqOff, sw.tsOff
			if sw.prev != nil && int16(seq-sw.switchSeq) < 0 {
				if sw.switches > 1 && int16(seq-sw.prevFrom) < 0 {
					continue // from a layer before the last two: too old
				}
				l, seqOff, tsOff = sw.prev, sw.prevSeqOff, sw.prevTSOff
			}
			if l == nil {
				continue
			}
			p := l.fan.lookup(seq - seqOff)
			if p == nil {
				continue
			}
			sw.pkt = *p
			sw.pkt.SequenceNumber += seqOff
			sw.pkt.Timestamp += tsOff
			_ = sw.track.WriteRTP(&sw.pkt)
		}
	}
}

// forwardSimulcastRTCP is forwardRTCP for a switcher.
func (p *peer) forwardSimulcastRTCP(sender *webrtc.RTPSender, sw *switcher) {
	defer sw.stop()
	readRTCP(sender, sw.requestKeyframe, sw.resend)
}

// LayerInfo is one layer of a simulcast track.
type LayerInfo struct {
	Name   string `json:"name"` // low, medium or high
	RID    string `json:"rid"`
	Width  int    `json:"width,omitempty"` // known from a VP8 keyframe
	Height int    `json:"height,omitempty"`
}

func (sc *simulcast) info() []LayerInfo {
	layers := sc.snapshot()
	out := make([]LayerInfo, len(layers))
	for i, l := range layers {
		name := layerNames[1]
		switch i {
		case 0:
			name = layerNames[0]
		case len(layers) - 1:
			name = layerNames[2]
		}
		out[i] = LayerInfo{Name: name, RID: l.rid, Width: int(l.width.Load()), Height: int(l.height.Load())}
	}
	return out
}
