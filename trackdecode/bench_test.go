package trackdecode

import (
	"math/rand/v2"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/stagehand-rt/stagehand/internal/avframe"
)

// drawMoving draws a webcam-like picture: a gradient with a little sensor
// noise, and a box moving across it.
func drawMoving(f *astiav.Frame, i int, rng *rand.Rand) {
	w, h := f.Width(), f.Height()
	y, ls := avframe.VideoPlane(f, 0)
	bx, by := (i*12)%(w-160), h/3
	for r := 0; r < h; r++ {
		for x := 0; x < w; x++ {
			v := 40 + 140*x/w + rng.IntN(6)
			if x >= bx && x < bx+160 && r >= by && r < by+160 {
				v = 220
			}
			y[r*ls+x] = uint8(v)
		}
	}
	for p := 1; p < 3; p++ {
		c, ls := avframe.VideoPlane(f, p)
		for r := 0; r < h/2; r++ {
			for x := 0; x < w/2; x++ {
				c[r*ls+x] = uint8(128 + 30*(p*2-3)*r/h)
			}
		}
	}
}

// BenchmarkVideoPush pushes a 720p VP8 track at 2 Mbps (keyframe every 2 s)
// through a decoder; one op is one frame. The sub-benchmarks split the cost:
// samplebuilder alone, the package's intake (filtering, copying, reorder
// buffer) without decoding, and the whole Push.
func BenchmarkVideoPush(b *testing.B) {
	const frames = 60
	s := encodeVideo(b, videoSpec{mime: MimeTypeVP8, w: 1280, h: 720, n: frames, gop: frames, bitrate: 2_000_000, draw: drawMoving})
	packets := len(s.all())
	b.Logf("720p VP8: %d frames in %d packets, %.1f packets per frame", frames, packets, float64(packets)/frames)

	b.Run("samplebuilder", func(b *testing.B) {
		l := newLooper(s)
		sb := samplebuilder.New(videoMaxLate, &codecs.VP8Packet{}, videoClockRate)
		run(b, l, func(i int) {
			for _, p := range l.frame(i) {
				sb.Push(p)
				for sb.Pop() != nil {
				}
			}
		})
	})
	b.Run("intake", func(b *testing.B) {
		l := newLooper(s)
		v, err := NewVideo(MimeTypeVP8)
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		run(b, l, func(i int) {
			for _, p := range l.frame(i) {
				v.in.push(p)
				for v.in.pop() != nil {
				}
			}
		})
	})
	b.Run("push", func(b *testing.B) {
		l := newLooper(s)
		v, err := NewVideo(MimeTypeVP8)
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		decoded := 0
		onFrame := func(*astiav.Frame, uint32) { decoded++ }
		run(b, l, func(i int) {
			for _, p := range l.frame(i) {
				if err := v.Push(p, onFrame); err != nil {
					b.Fatal(err)
				}
			}
		})
		if st := v.Stats(); decoded == 0 || st.DecodeErrors+st.FramesBroken+st.Lost != 0 {
			b.Fatalf("%d frames decoded, stats %+v", decoded, st)
		}
	})
}

// run calls frame for b.N frames after a pass of warm-up.
func run(b *testing.B, l *looper, frame func(i int)) {
	b.Helper()
	warm := len(l.frames)
	for i := range warm {
		frame(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		frame(warm + i)
	}
}

// BenchmarkInspectH264 inspects H.264 access units as the depacketizer
// assembles them: a keyframe (SPS, PPS, a 40 kB IDR slice) and 4 kB P
// frames. It runs once per frame.
func BenchmarkInspectH264(b *testing.B) {
	key := annexB(testSPS, testPPS, testSlice(0x65, 40_000))
	p := annexB(testSlice(0x41, 4_000))
	b.ReportAllocs()
	for i := range b.N {
		au := p
		if i%60 == 0 {
			au = key
		}
		if info := inspectH264(au); info.broken || info.padding {
			b.Fatalf("inspect: %+v", info)
		}
	}
}
