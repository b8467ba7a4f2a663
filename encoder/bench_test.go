package encoder

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/layout"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVideoEncode encodes a moving composite-like picture (colour
// bars, a gradient and a moving box) with the default preset. ns/op is wall
// time per frame; cpu-ms/frame counts every thread libx264 runs, and
// cpu-s/s is CPU seconds per second of 30 fps output.
func BenchmarkVideoEncode(b *testing.B) {
	for _, s := range []layout.Size{{W: 1280, H: 720}, {W: 1920, H: 1080}} {
		b.Run(fmt.Sprintf("%dx%d", s.W, s.H), func(b *testing.B) {
			v, err := NewVideo(VideoConfig{Width: s.W, Height: s.H, Bitrate: 4_500_000})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			frames := make([]*astiav.Frame, 30)
			for i := range frames {
				f, err := compositor.NewFrame(s, compositor.Black)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Free()
				bars := []compositor.Color{compositor.White, {R: 230, G: 210, B: 40}, {R: 30, G: 200, B: 200}, {R: 30, G: 200, B: 60}, {R: 150, G: 40, B: 180}}
				w := s.W / len(bars) &^ 1
				for k, c := range bars {
					compositor.FillRect(f, layout.Rect{X: k * w, W: w, H: s.H / 2 &^ 1}, c)
				}
				compositor.FillRect(f, layout.Rect{X: i * 16, Y: s.H / 2 &^ 1, W: 128, H: 128}, compositor.White)
				compositor.DrawLabel(f, 40, s.H*3/4, 8, fmt.Sprintf("frame %d", i), compositor.White)
				frames[i] = f
			}
			emit := func(*astiav.Packet) error { return nil }
			b.ReportAllocs()
			start := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := v.Encode(frames[i%len(frames)], emit); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := cpuTime() - start
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/frame")
			b.ReportMetric(cpu.Seconds()/(float64(b.N)/30), "cpu-s/s")
		})
	}
}
