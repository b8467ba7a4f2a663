package trackdecode

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp"

	"github.com/stagehand-rt/stagehand/internal/avframe"
)

const audioFrames = 50 // one second

type audioCase struct {
	name    string
	deliver func(pkts []*rtp.Packet) []*rtp.Packet
	decoded func(pkts []*rtp.Packet) []int // packets expected out, in order
	check   func(t *testing.T, st AudioStats)
}

func TestAudioDelivery(t *testing.T) {
	s := newAudioStream(t, audioFrames)
	n := len(s.packets)
	allButLast := func([]*rtp.Packet) []int { return span(0, n-1) }
	cases := []audioCase{{
		name:    "in order",
		deliver: slices.Clone[[]*rtp.Packet],
		decoded: allButLast,
		check: func(t *testing.T, st AudioStats) {
			t.Helper()
			want := AudioStats{PacketStats: PacketStats{Pushed: uint64(n)}, FramesDecoded: uint64(n - 1), SamplesDecoded: uint64((n - 1) * opusFrame)}
			if st != want {
				t.Errorf("stats %+v, want %+v", st, want)
			}
		},
	}, {
		name: "adjacent packets swapped",
		deliver: func(pkts []*rtp.Packet) []*rtp.Packet {
			out := slices.Clone(pkts)
			for i := 0; i+1 < len(out); i += 2 {
				out[i], out[i+1] = out[i+1], out[i]
			}
			return out
		},
		decoded: allButLast,
		check: func(t *testing.T, st AudioStats) {
			t.Helper()
			if st.Late+st.Lost+st.Duplicate != 0 {
				t.Errorf("stats %+v: nothing should be dropped", st)
			}
		},
	}, {
		name: "every packet duplicated",
		deliver: func(pkts []*rtp.Packet) []*rtp.Packet {
			var out []*rtp.Packet
			for i, p := range pkts {
				out = append(out, p)
				if i > 0 {
					out = append(out, pkts[i-1])
				}
			}
			return append(out, pkts[len(pkts)-1])
		},
		decoded: allButLast,
		check: func(t *testing.T, st AudioStats) {
			t.Helper()
			if st.Duplicate+st.Late != uint64(n) || st.Lost != 0 {
				t.Errorf("stats %+v: want %d copies dropped, nothing lost", st, n)
			}
		},
	}, {
		name: "packet lost",
		deliver: func(pkts []*rtp.Packet) []*rtp.Packet {
			return slices.Delete(slices.Clone(pkts), 20, 21)
		},
		decoded: func([]*rtp.Packet) []int { return append(span(0, 20), span(21, n-1)...) },
		check: func(t *testing.T, st AudioStats) {
			t.Helper()
			if st.Lost != 1 || st.FramesDecoded != uint64(n-2) {
				t.Errorf("stats %+v: want 1 lost", st)
			}
		},
	}, {
		name: "starting mid-stream",
		deliver: func(pkts []*rtp.Packet) []*rtp.Packet {
			return slices.Clone(pkts[10:])
		},
		decoded: func([]*rtp.Packet) []int { return span(10, n-1) },
		check:   func(*testing.T, AudioStats) {},
	}, {
		name: "garbage mixed in",
		deliver: func(pkts []*rtp.Packet) []*rtp.Packet {
			var out []*rtp.Packet
			for i, p := range pkts {
				out = append(out, p)
				if i+1 == len(pkts) {
					continue
				}
				g := clone(pkts[i+1])
				switch i % 4 {
				case 0:
					g.SSRC++
				case 1:
					g.PayloadType++
				case 2:
					g.Payload, g.Padding = nil, true
				case 3:
					g.Payload = make([]byte, maxPayload+1)
				}
				out = append(out, g)
			}
			return out
		},
		decoded: allButLast,
		check: func(t *testing.T, st AudioStats) {
			t.Helper()
			k := uint64(n - 1) // garbage packets, a quarter of each kind
			if st.Foreign != (k+3)/4+(k+2)/4 || st.Padding != (k+1)/4 || st.Malformed != k/4 || st.Lost != 0 || st.DecodeErrors != 0 {
				t.Errorf("stats %+v: want %d garbage packets counted by kind, nothing lost", st, k)
			}
		},
	}, {
		name: "packet the decoder refuses",
		deliver: func(pkts []*rtp.Packet) []*rtp.Packet {
			bad := clone(pkts[20])
			bad.Payload = []byte{0xff, 0x00} // code 3 packet of zero frames
			return renumber(slices.Insert(slices.Clone(pkts), 20, bad))
		},
		// The refused packet carries packet 20's timestamp; packet 20 follows
		// it with the same one.
		decoded: allButLast,
		check: func(t *testing.T, st AudioStats) {
			t.Helper()
			if st.DecodeErrors != 1 || st.Lost != 0 {
				t.Errorf("stats %+v: want 1 decode error", st)
			}
		},
	}}

	index := map[uint32]int{}
	for i, p := range s.packets {
		index[p.Timestamp] = i
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAudio(MimeTypeOpus)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			var (
				got         []int
				left, right []float32
			)
			onFrame := func(f *astiav.Frame, ts uint32) {
				i, ok := index[ts]
				if !ok {
					t.Fatalf("frame with RTP timestamp %d, which no packet was sent with", ts)
				}
				got = append(got, i)
				if f.NbSamples() != opusFrame || f.SampleRate() != AudioSampleRate ||
					f.ChannelLayout().NbChannels() != AudioChannels || f.SampleFormat() != astiav.SampleFormatFltp {
					t.Errorf("frame %d: %d samples at %d Hz, %d channels, %s; want %d at %d Hz, %d channels, fltp",
						i, f.NbSamples(), f.SampleRate(), f.ChannelLayout().NbChannels(), f.SampleFormat(), opusFrame, AudioSampleRate, AudioChannels)
				}
				left = appendSamples(left, avframe.AudioPlane(f, 0))
				right = appendSamples(right, avframe.AudioPlane(f, 1))
			}
			pkts := tc.deliver(s.packets)
			for _, p := range pkts {
				if err := a.Push(p, onFrame); err != nil {
					t.Fatal(err)
				}
			}
			if want := tc.decoded(s.packets); !slices.Equal(got, want) {
				t.Errorf("decoded packets %v,\nwant %v", got, want)
			}
			st := a.Stats()
			if st.Pushed != uint64(len(pkts)) || st.FramesDecoded != uint64(len(got)) || st.SamplesDecoded != uint64(len(got)*opusFrame) {
				t.Errorf("stats %+v: want %d pushed, %d frames of %d samples decoded", st, len(pkts), len(got), opusFrame)
			}
			tc.check(t, st)
			if tc.name == "in order" {
				// Past the encoder's start-up, the tones come out at their
				// frequencies and levels, each on its channel.
				skip := 10 * opusFrame
				for c, ch := range map[float64][]float32{toneLeft: left[skip:], toneRight: right[skip:]} {
					if hz := zeroCrossingHz(ch); math.Abs(hz-c)/c > 0.01 {
						t.Errorf("%v Hz tone decoded at %.1f Hz", c, hz)
					}
					if r := rms(ch); math.Abs(r-0.5/math.Sqrt2) > 0.05 {
						t.Errorf("%v Hz tone at RMS %.3f, want %.3f", c, r, 0.5/math.Sqrt2)
					}
				}
			}
		})
	}
}

// TestAudioGarbageOnly feeds random payloads: the decoder may refuse them,
// but it must neither fail nor stall on them.
func TestAudioGarbageOnly(t *testing.T) {
	a, err := NewAudio("AUDIO/OPUS")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 500; i++ {
		payload := make([]byte, 1+rng.IntN(300))
		for j := range payload {
			payload[j] = byte(rng.IntN(256))
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(i * opusFrame)}, Payload: payload}
		if err := a.Push(p, nil); err != nil {
			t.Fatal(err)
		}
	}
	st := a.Stats()
	if st.FramesDecoded+st.DecodeErrors < 400 {
		t.Errorf("stats %+v: most packets should have been decoded or refused", st)
	}
}

func appendSamples(dst []float32, plane []byte) []float32 {
	for i := 0; i+4 <= len(plane); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(plane[i:])))
	}
	return dst
}

// zeroCrossingHz estimates the frequency of a tone from its sign changes.
func zeroCrossingHz(x []float32) float64 {
	first, last, n := -1, -1, 0
	for i := 1; i < len(x); i++ {
		if (x[i-1] < 0) != (x[i] < 0) {
			if first < 0 {
				first = i
			}
			last = i
			n++
		}
	}
	if n < 2 {
		return 0
	}
	return float64(n-1) / 2 / (float64(last-first) / AudioSampleRate)
}

func rms(x []float32) float64 {
	var sum float64
	for _, v := range x {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(x)))
}
