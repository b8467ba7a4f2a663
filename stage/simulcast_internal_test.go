package stage

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/refusal"
)

// pktWriter records copies of the packets written to one subscriber.
type pktWriter struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (w *pktWriter) WriteRTP(p *rtp.Packet) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := *p
	q.Payload = bytes.Clone(p.Payload)
	w.pkts = append(w.pkts, q)
	return nil
}

func (w *pktWriter) take() []rtp.Packet {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.pkts
	w.pkts = nil
	return out
}

// vp8Packet is a VP8 packet: a keyframe's first packet (with its picture
// size), an inter frame's first, or a continuation; its last payload byte
// is tag, to tell packets apart.
func vp8Packet(seq uint16, ts uint32, key, start bool, tag byte) *rtp.Packet {
	var payload []byte
	switch {
	case key:
		payload = []byte{0x10, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, tag} // 640x360
	case start:
		payload = []byte{0x10, 0x01, tag}
	default:
		payload = []byte{0x00, tag}
	}
	return &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}, Payload: payload}
}

// testSimulcast is a simulcast VP8 track with layers of these RIDs, fed
// by the test instead of a publisher.
func testSimulcast(t *testing.T, rids ...string) (*forwardTrack, map[string]*layer) {
	t.Helper()
	var wg sync.WaitGroup
	ft := &forwardTrack{id: "video", codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		sim: &simulcast{subs: map[*switcher]struct{}{}}}
	layers := map[string]*layer{}
	for _, rid := range rids {
		l := &layer{rid: rid, fan: newFanout(func(fn func()) bool { wg.Go(fn); return true })}
		if !ft.sim.addLayer(l) {
			t.Fatalf("layer %s refused", rid)
		}
		layers[rid] = l
		t.Cleanup(l.fan.close)
	}
	t.Cleanup(wg.Wait)
	return ft, layers
}

// TestSwitcherRewrites: a subscriber switched from the low to the high
// layer sees one stream: the high layer's packets from its keyframe on,
// numbered after the last low one, its timestamps after the low ones, and
// nothing of the low layer after the switch. NACKs from before the switch
// are answered from the low layer's history, from after it from the high
// layer's.
func TestSwitcherRewrites(t *testing.T) {
	ft, layers := testSimulcast(t, "f", "q", "h")
	q, f := layers["q"], layers["f"]
	out := &pktWriter{}
	sw := newSwitcher(ft, out, "low")
	sw.start()
	for i := range uint16(10) {
		q.fan.write(vp8Packet(1000+i, 5000+uint32(i/3)*3000, i == 0, i%3 == 0, byte(i)))
	}
	got := out.take()
	if len(got) != 10 || got[0].SequenceNumber != 1000 || got[9].SequenceNumber != 1009 || got[9].Timestamp != 14000 {
		t.Fatalf("low layer before the switch: %d packets, first seq %d", len(got), got[0].SequenceNumber)
	}
	if rid := sw.choose("high"); rid != "f" {
		t.Fatalf("high is %q, want f", rid)
	}
	// Until the high layer's keyframe the low layer goes on.
	f.fan.write(vp8Packet(65530, 4_000_000_000, false, true, 0xa0))
	end := vp8Packet(1010, 14000, false, false, 10)
	end.Marker = true // the low frame ends: the switch needs not wait
	q.fan.write(end)
	f.fan.write(vp8Packet(65531, 4_000_000_000, false, false, 0xa1))
	for i := range uint16(10) {
		f.fan.write(vp8Packet(65532+i, 4_000_003_000+uint32(i/3)*3000, i == 0, i%3 == 0, 0xb0+byte(i)))
		q.fan.write(vp8Packet(1011+i, 17000, false, false, 0x20+byte(i)))
	}
	got = out.take()
	if len(got) != 11 {
		t.Fatalf("%d packets across the switch, want 1 low and 10 high", len(got))
	}
	for i, p := range got {
		if want := uint16(1010 + i); p.SequenceNumber != want {
			t.Errorf("packet %d: seq %d, want %d", i, p.SequenceNumber, want)
		}
		tag := p.Payload[len(p.Payload)-1]
		if i > 0 && tag != 0xb0+byte(i-1) {
			t.Errorf("packet %d is %#x, want the high layer's %#x", i, tag, 0xb0+byte(i-1))
		}
	}
	if d := got[1].Timestamp - got[0].Timestamp; d == 0 || d > 90000 {
		t.Errorf("timestamp step at the switch: %d ticks, want a little after the last low packet", d)
	}
	if d := got[10].Timestamp - got[1].Timestamp; d != 9000 {
		t.Errorf("the high layer's timestamps step by %d over 3 frames, want 9000", d)
	}
	// 1005 was sent from low, 1011 (the keyframe) and 1015 from high.
	sw.resend(&rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{1005, 1011, 1015})})
	got = out.take()
	want := map[uint16]byte{1005: 5, 1011: 0xb0, 1015: 0xb4}
	if len(got) != len(want) {
		t.Fatalf("%d packets resent, want %d", len(got), len(want))
	}
	for _, p := range got {
		if tag := p.Payload[len(p.Payload)-1]; tag != want[p.SequenceNumber] {
			t.Errorf("resent %d is %#x, want %#x", p.SequenceNumber, tag, want[p.SequenceNumber])
		}
	}
	// Back to low: its next keyframe, held until the high layer's frame
	// ends, then numbered on.
	sw.choose("low")
	q.fan.write(vp8Packet(1030, 40000, true, true, 0x30))
	if got := out.take(); len(got) != 0 {
		t.Fatalf("%d packets written while the high frame is unfinished", len(got))
	}
	end = vp8Packet(6, 4_000_012_000, false, false, 0xc0)
	end.Marker = true
	f.fan.write(end)
	got = out.take()
	if len(got) != 2 || got[0].SequenceNumber != 1021 || got[0].Payload[len(got[0].Payload)-1] != 0xc0 ||
		got[1].SequenceNumber != 1022 || got[1].Payload[len(got[1].Payload)-1] != 0x30 {
		t.Fatalf("back on low: %d packets, want the high frame's end then the low keyframe", len(got))
	}
	// A NACK of the first low stretch is now too old to map; the high
	// stretch is prev.
	sw.resend(&rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{1005, 1019, 1022})})
	got = out.take()
	if len(got) != 2 || got[0].SequenceNumber != 1019 || got[0].Payload[len(got[0].Payload)-1] != 0xb8 ||
		got[1].SequenceNumber != 1022 || got[1].Payload[len(got[1].Payload)-1] != 0x30 {
		t.Errorf("after two switches: %d packets resent, want 1019 from the high layer and 1022 from the low", len(got))
	}
	sw.stop()
	q.fan.write(vp8Packet(1031, 40000, false, true, 0x31))
	if got := out.take(); len(got) != 0 {
		t.Errorf("%d packets after the subscriber left", len(got))
	}
}

type discard struct{}

func (discard) WriteRTP(*rtp.Packet) error { return nil }

// TestSwitcherWriteAllocates nothing: the shared packet's header is
// copied into the switcher's own packet.
func TestSwitcherWriteAllocatesNothing(t *testing.T) {
	ft, layers := testSimulcast(t, "q")
	sw := newSwitcher(ft, discard{}, "")
	sw.start()
	p := vp8Packet(1, 1, false, true, 0)
	if n := testing.AllocsPerRun(1000, func() { sw.write(layers["q"], p); p.SequenceNumber++ }); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
}

func TestPickLayer(t *testing.T) {
	ft, layers := testSimulcast(t, "h", "f", "q")
	layers["q"].height.Store(90)
	layers["h"].height.Store(180)
	layers["f"].height.Store(360)
	all := ft.sim.snapshot()
	for name, rid := range map[string]string{"": "f", "high": "f", "medium": "h", "low": "q", "q": "q", "h": "h",
		"100p": "h", "90p": "q", "180p": "h", "181p": "f", "2000p": "f"} {
		if got := pick(all, name).rid; got != rid {
			t.Errorf("pick %q = %s, want %s", name, got, rid)
		}
	}
	two := []*layer{layers["q"], layers["f"]}
	if got := pick(two, "medium").rid; got != "f" {
		t.Errorf("medium of two = %s, want the higher", got)
	}
	for _, bad := range []string{"x", "0p", "p", "360P", "highest"} {
		err := validLayer(bad, []*forwardTrack{ft})
		var re *refusal.Error
		if !errors.As(err, &re) || re.Status != 400 || !strings.Contains(re.Message, "low, medium, high") ||
			!strings.Contains(re.Message, "q, h, f") {
			t.Errorf("layer %q: %v, want a 400 naming the layers", bad, err)
		}
	}
	if info := ft.sim.info(); len(info) != 3 || info[0].Name != "low" || info[0].RID != "q" || info[2].Height != 360 {
		t.Errorf("layer info %+v", info)
	}
}

func TestKeyframeDetection(t *testing.T) {
	if w, h, ok := vp8KeyframeSize(vp8Packet(0, 0, true, true, 0).Payload); !ok || w != 640 || h != 360 {
		t.Errorf("VP8 keyframe size %dx%d %v", w, h, ok)
	}
	// With the extension byte and a 15-bit picture id, as browsers send.
	ext := []byte{0x90, 0x80, 0x81, 0x23, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}
	if w, h, ok := vp8KeyframeSize(ext); !ok || w != 320 || h != 180 {
		t.Errorf("VP8 keyframe with a picture id: %dx%d %v", w, h, ok)
	}
	for _, c := range []struct {
		payload []byte
		key     bool
	}{
		{vp8Packet(0, 0, false, true, 0).Payload, false},
		{vp8Packet(0, 0, false, false, 0).Payload, false},
	} {
		if vp8Keyframe(c.payload) != c.key {
			t.Errorf("VP8 %x: keyframe %v", c.payload, !c.key)
		}
	}
	for _, c := range []struct {
		payload []byte
		key     bool
	}{
		{[]byte{0x65, 0}, true},                            // IDR
		{[]byte{0x41, 0}, false},                           // non-IDR slice
		{[]byte{0x18, 0, 2, 0x67, 0, 0, 2, 0x68, 0}, true}, // STAP-A: SPS, PPS
		{[]byte{0x7c, 0x85, 0}, true},                      // FU-A start of an IDR
		{[]byte{0x7c, 0x05, 0}, false},                     // FU-A continuation
	} {
		if h264Keyframe(c.payload) != c.key {
			t.Errorf("H.264 %x: keyframe %v", c.payload, !c.key)
		}
	}
}

// TestLateLayer: a subscriber that asked for the highest layer before it
// started moves to it on its first keyframe.
func TestLateLayer(t *testing.T) {
	ft, layers := testSimulcast(t, "q", "h")
	out := &pktWriter{}
	sw := newSwitcher(ft, out, "")
	sw.start()
	end := vp8Packet(10, 0, true, true, 0x10)
	end.Marker = true
	layers["h"].fan.write(end)
	f := &layer{rid: "f", fan: newFanout(func(fn func()) bool { go fn(); return true })}
	t.Cleanup(f.fan.close)
	if !ft.sim.addLayer(f) {
		t.Fatal("layer f refused")
	}
	ft.sim.rechoose()
	f.fan.write(vp8Packet(500, 0, true, true, 0xf0))
	got := out.take()
	if len(got) != 2 || got[1].SequenceNumber != 11 || got[1].Payload[len(got[1].Payload)-1] != 0xf0 {
		t.Errorf("%d packets; want h's then f's keyframe numbered after it", len(got))
	}
	sw.stop()
	if sw.choose("low"); len(*layers["q"].fan.shards.Load()) > 0 && len(*(*layers["q"].fan.shards.Load())[0].subs.Load()) != 0 {
		t.Error("a choice after the subscriber left joined a fan-out")
	}
}

// BenchmarkSubscriberWrite: what one packet costs per subscriber in the
// fan-out's write path, for a track without simulcast (the subscriber's
// track written directly) and with (through its switcher: the lock, the
// header copied and renumbered). The track is a no-op here: pion's
// WriteRTP (SRTP, the socket) comes on top of both.
func BenchmarkSubscriberWrite(b *testing.B) {
	p := vp8Packet(1, 1, false, true, 0)
	b.Run("plain", func(b *testing.B) {
		f := newFanout(func(fn func()) bool { go fn(); return true })
		defer f.close()
		f.add(discard{})
		b.ReportAllocs()
		for range b.N {
			f.write(p)
		}
	})
	b.Run("simulcast", func(b *testing.B) {
		ft := &forwardTrack{id: "video", codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
			ClockRate: 90000}, sim: &simulcast{subs: map[*switcher]struct{}{}}}
		l := &layer{rid: "q", fan: newFanout(func(fn func()) bool { go fn(); return true })}
		defer l.fan.close()
		ft.sim.addLayer(l)
		newSwitcher(ft, discard{}, "").start()
		b.ReportAllocs()
		for range b.N {
			l.fan.write(p)
		}
	})
}
