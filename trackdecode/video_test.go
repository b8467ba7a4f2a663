package trackdecode

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp"
)

const (
	testFrames = 48
	testGOP    = 12 // keyframes at 0, 12, 24, 36
)

// span is the frames from a up to b, b excluded.
func span(a, b int) []int {
	var out []int
	for i := a; i < b; i++ {
		out = append(out, i)
	}
	return out
}

// The last frame is never emitted: pion's samplebuilder waits for the first
// packet of the next frame.
var allFrames = span(0, testFrames-1)

type videoCase struct {
	name    string
	deliver func(s *videoStream) []*rtp.Packet
	decoded []int  // frames expected out, in order
	trace   []bool // NeedsKeyframe after each push, runs collapsed
	check   func(t *testing.T, s *videoStream, st VideoStats)
}

// edit returns the stream's packets, with fn deciding for each packet of
// each frame what goes on the wire in its place.
func edit(s *videoStream, fn func(frame, i int, p *rtp.Packet) []*rtp.Packet) []*rtp.Packet {
	var out []*rtp.Packet
	for f, ps := range s.packets {
		for i, p := range ps {
			out = append(out, fn(f, i, p)...)
		}
	}
	return out
}

func keep(p *rtp.Packet) []*rtp.Packet { return []*rtp.Packet{p} }

// badKeyframe is a one-packet frame the decoder refuses: for VP8 a keyframe
// header asking for 16000x16000, for H.264 an IDR slice of noise.
func badKeyframe(mime string, after *rtp.Packet) *rtp.Packet {
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 600)
	for i := range body {
		body[i] = byte(rng.IntN(256))
	}
	p := clone(after)
	p.Timestamp += videoStep / 2
	p.Marker = true
	if mime == MimeTypeVP8 {
		const first = 100 // first partition size: fits, so only the decoder can object
		desc := []byte{0x10, first&7<<5 | 0x10, first >> 3, 0, 0x9d, 0x01, 0x2a, 0x80, 0x3e, 0x80, 0x3e}
		p.Payload = append(desc, body...)
	} else {
		p.Payload = append([]byte{0x65, 0x88}, body...)
	}
	return p
}

// malformed is a payload the codec's depacketizer rejects.
func malformed(mime string, k int) []byte {
	if mime == MimeTypeVP8 {
		return [][]byte{{0x80}, {0x90, 0x80}, {0x90, 0xc0, 0x81}}[k%3] // descriptors cut short
	}
	return [][]byte{{0x00, 0x01}, {0x18, 0x00, 0x10, 0x65}, {0x1c}}[k%3] // type 0, STAP-A overrun, FU-A header cut
}

func videoCases(mime string) []videoCase {
	total := func(s *videoStream) uint64 { return uint64(len(s.all())) }
	return []videoCase{{
		name:    "in order",
		deliver: (*videoStream).all,
		decoded: allFrames,
		trace:   []bool{true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			want := VideoStats{PacketStats: PacketStats{Pushed: total(s)}, FramesDecoded: testFrames - 1, KeyframeRequests: 1}
			if st != want {
				t.Errorf("stats %+v, want %+v", st, want)
			}
		},
	}, {
		name: "reordered within 8 packets",
		deliver: func(s *videoStream) []*rtp.Packet {
			all := s.all()
			rng := rand.New(rand.NewPCG(3, 4))
			for i := 0; i < len(all); i += 8 {
				block := all[i:min(i+8, len(all))]
				rng.Shuffle(len(block), func(a, b int) { block[a], block[b] = block[b], block[a] })
			}
			return all
		},
		decoded: allFrames,
		trace:   []bool{true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			if st.Late+st.Duplicate+st.Lost+st.FramesSkipped+st.FramesBroken != 0 {
				t.Errorf("stats %+v: nothing should be dropped", st)
			}
		},
	}, {
		name: "every packet duplicated, copies 3 packets late",
		deliver: func(s *videoStream) []*rtp.Packet {
			all := s.all()
			var out []*rtp.Packet
			for i, p := range all {
				out = append(out, p)
				if i >= 3 {
					out = append(out, all[i-3])
				}
			}
			return append(out, all[len(all)-3:]...)
		},
		decoded: allFrames,
		trace:   []bool{true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			if st.Duplicate+st.Late != total(s) || st.Lost != 0 || st.KeyframeRequests != 1 {
				t.Errorf("stats %+v: want the %d copies dropped as duplicate or late, nothing lost", st, total(s))
			}
		},
	}, {
		name: "packet lost mid-frame",
		deliver: func(s *videoStream) []*rtp.Packet {
			return edit(s, func(f, i int, p *rtp.Packet) []*rtp.Packet {
				if f == 14 && i == len(s.packets[14])/2 {
					return nil
				}
				return keep(p)
			})
		},
		// Frame 14 is incomplete and 15 to 23 reference it: back at
		// keyframe 24. The hole is given up on 250 ms later (at frame 22),
		// and the decoder asks for a keyframe from then until 24 arrives.
		decoded: append(span(0, 14), span(24, testFrames-1)...),
		trace:   []bool{true, false, true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			n := len(s.packets[14])
			// The packets before the hole make a broken frame, the ones after
			// it lost their head.
			want := VideoStats{
				PacketStats:   PacketStats{Pushed: total(s) - 1, Lost: 1, Orphaned: uint64(n - n/2 - 1)},
				FramesDecoded: testFrames - 1 - 10, FramesSkipped: 9, FramesBroken: 1, KeyframeRequests: 2,
			}
			if s.mime == MimeTypeH264 {
				// The FU-A fragments before the hole never make a NAL unit:
				// nothing of the frame is left to count as broken.
				want.FramesBroken = 0
			}
			if st != want {
				t.Errorf("stats %+v,\nwant  %+v", st, want)
			}
		},
	}, {
		name: "packet retransmitted within the window",
		deliver: func(s *videoStream) []*rtp.Packet {
			lost := s.packets[14][len(s.packets[14])/2]
			return edit(s, func(f, i int, p *rtp.Packet) []*rtp.Packet {
				switch {
				case p == lost:
					return nil
				case f == 17 && i == 0: // 100 ms later, as a NACK would bring it
					return []*rtp.Packet{lost, p}
				}
				return keep(p)
			})
		},
		decoded: allFrames,
		trace:   []bool{true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			if st.Lost+st.Late+st.Orphaned+st.FramesSkipped != 0 || st.KeyframeRequests != 1 {
				t.Errorf("stats %+v: nothing should be lost", st)
			}
		},
	}, {
		name: "packet retransmitted after the window",
		deliver: func(s *videoStream) []*rtp.Packet {
			lost := s.packets[14][len(s.packets[14])/2]
			return edit(s, func(f, i int, p *rtp.Packet) []*rtp.Packet {
				switch {
				case p == lost:
					return nil
				case f == 30 && i == 0:
					return []*rtp.Packet{lost, p}
				}
				return keep(p)
			})
		},
		decoded: append(span(0, 14), span(24, testFrames-1)...),
		trace:   []bool{true, false, true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			if st.Lost != 1 || st.Late != 1 {
				t.Errorf("stats %+v: want the packet lost, then late", st)
			}
		},
	}, {
		name: "keyframe broken by a lost packet",
		deliver: func(s *videoStream) []*rtp.Packet {
			return edit(s, func(f, i int, p *rtp.Packet) []*rtp.Packet {
				if f == 24 && i == 1 {
					return nil
				}
				return keep(p)
			})
		},
		decoded: append(span(0, 24), span(36, testFrames-1)...),
		trace:   []bool{true, false, true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			if st.Lost != 1 || st.Orphaned != uint64(len(s.packets[24])-2) || st.FramesBroken != 1 || st.FramesSkipped != 11 || st.KeyframeRequests != 2 {
				t.Errorf("stats %+v: want 1 lost, the %d after it orphaned, keyframe 24 broken, frames 25-35 skipped", st, len(s.packets[24])-2)
			}
		},
	}, {
		name: "starting mid-stream, mid-frame",
		deliver: func(s *videoStream) []*rtp.Packet {
			return edit(s, func(f, i int, p *rtp.Packet) []*rtp.Packet {
				if f < 5 || f == 5 && i < len(s.packets[5])/2 {
					return nil
				}
				return keep(p)
			})
		},
		decoded: span(12, testFrames-1),
		trace:   []bool{true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			tail := uint64(len(s.packets[5]) - len(s.packets[5])/2)
			// Nothing reached the decoder before the keyframe: no errors.
			if st.Orphaned != tail || st.Lost != 0 || st.FramesSkipped != 6 || st.DecodeErrors != 0 || st.KeyframeRequests != 1 {
				t.Errorf("stats %+v: want the %d packets of frame 5's tail orphaned, frames 6-11 skipped, no decode error, 1 keyframe request", st, tail)
			}
		},
	}, {
		name: "garbage mixed in",
		deliver: func(s *videoStream) []*rtp.Packet {
			all := s.all()
			var out []*rtp.Packet
			for i, p := range all {
				out = append(out, p)
				if i%5 != 0 || i+1 == len(all) {
					continue
				}
				g := clone(all[i+1]) // takes the next packet's sequence number, arrives first
				switch k := i / 5; k % 4 {
				case 0:
					g.SSRC ^= 0xffff
				case 1:
					g.PayloadType++
				case 2:
					g.Payload = malformed(s.mime, k)
				case 3:
					g.Payload = make([]byte, maxPayload+1)
				}
				out = append(out, g)
			}
			return out
		},
		decoded: allFrames,
		trace:   []bool{true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			var foreign, bad uint64
			for i := 0; i+1 < len(s.all()); i += 5 {
				if (i/5)%4 < 2 {
					foreign++
				} else {
					bad++
				}
			}
			if st.Foreign != foreign || st.Malformed != bad || st.Lost != 0 || st.Duplicate != 0 {
				t.Errorf("stats %+v: want %d foreign and %d malformed, nothing lost", st, foreign, bad)
			}
		},
	}, {
		name: "padding-only packets between frames",
		deliver: func(s *videoStream) []*rtp.Packet {
			pad := func(ts uint32) *rtp.Packet {
				p := clone(s.packets[0][0])
				p.Padding, p.PaddingSize, p.Marker, p.Payload, p.Timestamp = true, 255, false, nil, ts
				return p
			}
			out := edit(s, func(f, i int, p *rtp.Packet) []*rtp.Packet {
				if f%4 != 3 || i != len(s.packets[f])-1 {
					return keep(p)
				}
				// Chrome pads with the last frame's timestamp, pion's
				// GeneratePadding with the next one's.
				return []*rtp.Packet{p, pad(p.Timestamp), pad(p.Timestamp + videoStep)}
			})
			return renumber(out)
		},
		// The padding after the last frame lets it out too.
		decoded: span(0, testFrames),
		trace:   []bool{true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			if st.Padding != 2*testFrames/4 || st.Lost != 0 || st.KeyframeRequests != 1 || st.FramesSkipped != 0 {
				t.Errorf("stats %+v: want %d padding packets, nothing lost", st, 2*testFrames/4)
			}
		},
	}, {
		name: "frame cut short",
		deliver: func(s *videoStream) []*rtp.Packet {
			return edit(s, func(f, i int, p *rtp.Packet) []*rtp.Packet {
				if f == 17 && len(p.Payload) > 16 {
					p = clone(p)
					p.Payload = p.Payload[:16]
				}
				return keep(p)
			})
		},
		decoded: append(span(0, 17), span(24, testFrames-1)...),
		trace:   []bool{true, false, true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			// VP8's header check sees the first partition does not fit; the
			// H.264 decoder flags the slice it had to conceal.
			if st.FramesBroken+st.DecodeErrors != 1 || st.FramesSkipped != 6 || st.KeyframeRequests != 2 {
				t.Errorf("stats %+v: want frame 17 broken or a decode error, frames 18-23 skipped", st)
			}
		},
	}, {
		name: "keyframe the decoder refuses",
		deliver: func(s *videoStream) []*rtp.Packet {
			return renumber(edit(s, func(f, i int, p *rtp.Packet) []*rtp.Packet {
				if f == 17 && i == len(s.packets[f])-1 {
					return []*rtp.Packet{p, badKeyframe(s.mime, p)}
				}
				return keep(p)
			}))
		},
		decoded: append(span(0, 18), span(24, testFrames-1)...),
		trace:   []bool{true, false, true, false},
		check: func(t *testing.T, s *videoStream, st VideoStats) {
			t.Helper()
			if st.DecodeErrors != 1 || st.FramesSkipped != 6 || st.KeyframeRequests != 2 {
				t.Errorf("stats %+v: want 1 decode error, frames 18-23 skipped", st)
			}
		},
	}}
}

func TestVideoDelivery(t *testing.T) {
	for _, mime := range []string{MimeTypeVP8, MimeTypeH264} {
		s := newVideoStream(t, mime, 320, 240, testFrames, testGOP)
		for _, tc := range videoCases(mime) {
			t.Run(mime+"/"+tc.name, func(t *testing.T) {
				v, err := NewVideo(mime)
				if err != nil {
					t.Fatal(err)
				}
				defer v.Close()
				if !v.NeedsKeyframe() {
					t.Error("a new decoder does not ask for a keyframe")
				}
				var (
					got   []int
					trace []bool
				)
				onFrame := func(f *astiav.Frame, ts uint32) {
					i, ok := s.index[ts]
					if !ok {
						t.Fatalf("frame with RTP timestamp %d, which no frame was sent with", ts)
					}
					got = append(got, i)
					if f.Width() != s.w || f.Height() != s.h || f.PixelFormat() != astiav.PixelFormatYuv420P {
						t.Errorf("frame %d is %dx%d %s, want %dx%d yuv420p", i, f.Width(), f.Height(), f.PixelFormat(), s.w, s.h)
					}
					y, u, vv := colour(i)
					m := meanBelowBand(f)
					for p, want := range []uint8{y, u, vv} {
						if math.Abs(m[p]-float64(want)) > 3 {
							t.Errorf("frame %d plane %d: mean %.1f, want %d", i, p, m[p], want)
						}
					}
				}
				pkts := tc.deliver(s)
				for _, p := range pkts {
					if err := v.Push(p, onFrame); err != nil {
						t.Fatalf("Push: %v", err)
					}
					if nk := v.NeedsKeyframe(); len(trace) == 0 || trace[len(trace)-1] != nk {
						trace = append(trace, nk)
					}
				}
				if !slices.Equal(got, tc.decoded) {
					t.Errorf("decoded frames %v,\nwant %v", got, tc.decoded)
				}
				if !slices.Equal(trace, tc.trace) {
					t.Errorf("NeedsKeyframe went %v, want %v", trace, tc.trace)
				}
				st := v.Stats()
				if st.Pushed != uint64(len(pkts)) || st.FramesDecoded != uint64(len(got)) {
					t.Errorf("stats %+v: want %d pushed, %d decoded", st, len(pkts), len(got))
				}
				tc.check(t, s, st)
			})
		}
	}
}

// TestVideoStreamRestart checks that a sender that restarts (new SSRC and
// sequence numbers) is followed after a few packets, from its next keyframe.
func TestVideoStreamRestart(t *testing.T) {
	s := newVideoStream(t, MimeTypeVP8, 320, 240, testFrames, testGOP)
	v, err := NewVideo(MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var got []int
	onFrame := func(_ *astiav.Frame, ts uint32) { got = append(got, s.index[ts]) }
	for _, p := range slices.Concat(s.packets[:12]...) {
		if err := v.Push(p, onFrame); err != nil {
			t.Fatal(err)
		}
	}
	// The restarted sender: frames 12 on, another SSRC, sequence numbers
	// from far behind.
	for _, p := range slices.Concat(s.packets[12:]...) {
		p = clone(p)
		p.SSRC++
		p.SequenceNumber -= 20000
		if err := v.Push(p, onFrame); err != nil {
			t.Fatal(err)
		}
	}
	st := v.Stats()
	if st.Resyncs != 1 || st.Foreign != resyncAfter-1 {
		t.Errorf("stats %+v: want 1 resync after %d foreign packets", st, resyncAfter-1)
	}
	// Frame 11 was waiting for a next packet of the old stream. Frames 12
	// to 23 go while the new stream is taken for garbage; it is followed
	// from keyframe 24.
	if want := append(span(0, 11), span(24, testFrames-1)...); !slices.Equal(got, want) {
		t.Errorf("decoded %v,\nwant %v", got, want)
	}
}

func TestNewUnsupported(t *testing.T) {
	for _, mime := range []string{"video/VP9", "video/AV1", "audio/opus", ""} {
		if _, err := NewVideo(mime); !errors.Is(err, ErrUnsupportedCodec) {
			t.Errorf("NewVideo(%q): %v, want ErrUnsupportedCodec", mime, err)
		}
	}
	for _, mime := range []string{"audio/PCMU", "video/VP8"} {
		if _, err := NewAudio(mime); !errors.Is(err, ErrUnsupportedCodec) {
			t.Errorf("NewAudio(%q): %v, want ErrUnsupportedCodec", mime, err)
		}
	}
	for _, mime := range []string{"video/vp8", "VIDEO/h264"} {
		v, err := NewVideo(mime)
		if err != nil {
			t.Errorf("NewVideo(%q): %v", mime, err)
			continue
		}
		v.Close()
	}
}

// TestSequenceJumps checks that jumps of the sequence beyond the window
// restart the buffer at once: pion's samplebuilder, left to force out a
// jump of 30000, scans the empty slots for every packet it lets go.
func TestSequenceJumps(t *testing.T) {
	s := newVideoStream(t, MimeTypeVP8, 320, 240, testFrames, testGOP)
	v, err := NewVideo(MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var got []int
	onFrame := func(_ *astiav.Frame, ts uint32) { got = append(got, s.index[ts]) }
	start := time.Now()
	for f, ps := range s.packets {
		for _, p := range ps {
			p = clone(p)
			p.SequenceNumber += uint16(f/testGOP) * 30000 // a jump at each keyframe
			if err := v.Push(p, onFrame); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("pushing %d frames with 3 jumps took %v", testFrames, d)
	}
	// The frame before each jump goes with the old buffer.
	want := slices.Concat(span(0, 11), span(12, 23), span(24, 35), span(36, 47))
	if st := v.Stats(); st.Resyncs != 3 || !slices.Equal(got, want) {
		t.Errorf("stats %+v, decoded %v: want 3 resyncs and %v", st, got, want)
	}
}
