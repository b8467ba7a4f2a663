package trackdecode

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/stagehand-rt/stagehand/internal/avframe"
)

// Fuzz inputs are a mode byte, then packets as a 2-byte big-endian length
// and that many bytes of RTP, which are skipped when they do not parse.
// Mode bit 0 picks the codec where there are two; bit 1 rewrites each
// packet's SSRC and payload type to one stream's, so the fuzzer spends its
// time past the stream filter.
const (
	fuzzAltCodec  = 1
	fuzzOneStream = 2
)

func fuzzInput(mode byte, pkts []*rtp.Packet) []byte {
	out := []byte{mode}
	for _, p := range pkts {
		b, err := p.Marshal()
		if err != nil {
			panic(err)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	return out
}

// fuzzPackets splits an input into packets.
func fuzzPackets(data []byte) (mode byte, pkts []*rtp.Packet) {
	if len(data) == 0 {
		return 0, nil
	}
	mode, data = data[0], data[1:]
	for len(data) >= 2 {
		n := int(binary.BigEndian.Uint16(data)) & 0x0fff
		data = data[2:]
		n = min(n, len(data))
		p := &rtp.Packet{}
		if err := p.Unmarshal(data[:n]); err == nil {
			if mode&fuzzOneStream != 0 {
				p.SSRC, p.PayloadType = testSSRC, testPT
			}
			pkts = append(pkts, p)
		}
		data = data[n:]
	}
	return mode, pkts
}

// checkBounded fails when the intake holds more than its window allows.
func checkBounded(t *testing.T, in *intake) {
	t.Helper()
	limit := int(in.cfg.maxLate) + 1
	if in.nheld > limit || len(in.free) > limit || len(in.holes) > int(in.cfg.maxLate) {
		t.Fatalf("intake holds %d packets, %d free, %d holes: window is %d", in.nheld, len(in.free), len(in.holes), in.cfg.maxLate)
	}
}

// fuzzWatchdog bounds one run: no input may make Push pathological (the
// fuzzer itself reports a stuck run only as a stall). Its panic kills the
// worker, and the fuzzer keeps the input.
const fuzzWatchdog = 10 * time.Second

// fuzzMaxInput bounds inputs: a few dozen packets reach every state of
// the intake, and long inputs only slow the fuzzer down (each run opens a
// decoder, and minimizing runs thousands).
const fuzzMaxInput = 4096

// drawSolid draws colour(i) all over: tiny frames, for small seeds.
func drawSolid(f *astiav.Frame, i int, _ *rand.Rand) {
	y, u, v := colour(i)
	for p, c := range []uint8{y, u, v} {
		plane, _ := avframe.VideoPlane(f, p)
		for j := range plane {
			plane[j] = c
		}
	}
}

func FuzzVideoPush(f *testing.F) {
	for _, mime := range []string{MimeTypeVP8, MimeTypeH264} {
		s := encodeVideo(f, videoSpec{mime: mime, w: 64, h: 48, n: 6, gop: 3, bitrate: 100_000, draw: drawSolid})
		var mode byte = fuzzOneStream
		if mime == MimeTypeH264 {
			mode |= fuzzAltCodec
		}
		all := s.all()
		f.Add(fuzzInput(mode, all))
		f.Add(fuzzInput(mode&^fuzzOneStream, all[1:]))
		swapped := append([]*rtp.Packet(nil), all...)
		swapped[2], swapped[4] = swapped[4], swapped[2]
		f.Add(fuzzInput(mode, swapped))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		watchdog := time.AfterFunc(fuzzWatchdog, func() { panic("one fuzz run took over " + fuzzWatchdog.String()) })
		defer watchdog.Stop()
		mode, pkts := fuzzPackets(data)
		mime := MimeTypeVP8
		if mode&fuzzAltCodec != 0 {
			mime = MimeTypeH264
		}
		v, err := NewVideo(mime)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		onFrame := func(f *astiav.Frame, _ uint32) {
			if f.Width()*f.Height() > videoMaxPixels || f.Width() <= 0 || f.Height() <= 0 {
				t.Fatalf("frame of %dx%d", f.Width(), f.Height())
			}
		}
		for _, p := range pkts {
			if err := v.Push(p, onFrame); err != nil {
				t.Fatalf("Push: %v", err)
			}
			checkBounded(t, v.in)
		}
		st := v.Stats()
		if st.Pushed != uint64(len(pkts)) {
			t.Fatalf("%d pushed, stats say %d", len(pkts), st.Pushed)
		}
		if dropped := st.Foreign + st.Malformed + st.Duplicate + st.Late; dropped > st.Pushed {
			t.Fatalf("stats %+v: more dropped than pushed", st)
		}
		if st.FramesDecoded == 0 && !v.NeedsKeyframe() {
			t.Fatalf("stats %+v: in sync without having decoded a frame", st)
		}
	})
}

func FuzzAudioPush(f *testing.F) {
	s := newAudioStream(f, 6)
	f.Add(fuzzInput(fuzzOneStream, s.packets))
	f.Add(fuzzInput(0, s.packets[2:]))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		watchdog := time.AfterFunc(fuzzWatchdog, func() { panic("one fuzz run took over " + fuzzWatchdog.String()) })
		defer watchdog.Stop()
		_, pkts := fuzzPackets(data)
		a, err := NewAudio(MimeTypeOpus)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		onFrame := func(f *astiav.Frame, _ uint32) {
			if f.SampleRate() != AudioSampleRate || f.ChannelLayout().NbChannels() != AudioChannels {
				t.Fatalf("frame at %d Hz, %d channels", f.SampleRate(), f.ChannelLayout().NbChannels())
			}
		}
		for _, p := range pkts {
			if err := a.Push(p, onFrame); err != nil {
				t.Fatalf("Push: %v", err)
			}
			checkBounded(t, a.in)
		}
		if st := a.Stats(); st.Pushed != uint64(len(pkts)) {
			t.Fatalf("%d pushed, stats say %d", len(pkts), st.Pushed)
		}
	})
}

// FuzzPayloadCheck holds the payload checks to the depacketizers they
// stand in for: a payload the check lets through but the depacketizer
// rejects would make the samplebuilder drop its frame uncounted.
func FuzzPayloadCheck(f *testing.F) {
	f.Add([]byte{0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce})
	f.Add([]byte{0x7c, 0x85, 0x88})
	f.Add([]byte{0x90, 0xe0, 0x80, 0x01, 0x00, 0x10})
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, err := (&codecs.H264Packet{}).Unmarshal(payload)
		if got := validH264(payload); got != (err == nil) {
			t.Fatalf("validH264(%x) = %v, H264Packet.Unmarshal: %v", payload, got, err)
		}
		_, err = (&codecs.VP8Packet{}).Unmarshal(payload)
		if got := (&vp8Checker{}).valid(payload); got != (err == nil) {
			t.Fatalf("vp8 valid(%x) = %v, VP8Packet.Unmarshal: %v", payload, got, err)
		}
		// The inspections must not panic on anything.
		inspectVP8(payload, true)
		inspectH264(payload)
	})
}
