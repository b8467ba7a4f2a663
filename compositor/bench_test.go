package compositor

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/layout"
)

// BenchmarkRender renders a 1920x1080 canvas from 720p participants, one
// frame per iteration: ns/op is nanoseconds per rendered frame. "changing"
// feeds every participant a new frame before each render (the worst case,
// every tile scaled); "unchanged" feeds none, so unchanged-tile skipping has
// nothing to scale. "redraw-all" is "unchanged" with skipping turned off.
func BenchmarkRender(b *testing.B) {
	layouts := map[string]layout.Config{
		"grid": {},
		"pip":  {PiP: &layout.PipConfig{}},
	}
	for _, name := range []string{"grid", "pip"} {
		for _, n := range []int{1, 2, 4, 6, 9, 12} {
			for _, mode := range []string{"changing", "unchanged", "redraw-all"} {
				b.Run(fmt.Sprintf("%s/%d/%s", name, n, mode), func(b *testing.B) {
					benchRender(b, layouts[name], n, mode, 0)
				})
			}
		}
	}
}

// BenchmarkRenderWorkers renders 9 changing tiles with 1, 2 and 4 drawing
// goroutines: what the pool buys on this machine.
func BenchmarkRenderWorkers(b *testing.B) {
	for _, n := range []int{4, 9} {
		for _, w := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("grid/%d/workers-%d", n, w), func(b *testing.B) {
				benchRender(b, layout.Config{}, n, "changing", w)
			})
		}
	}
}

// BenchmarkRenderSources renders 9 changing tiles of a 1080p grid from
// participants of each size: 640x360 is what a simulcast publisher's small
// layer gives (layer-aware composition), 1280x720 its top layer, 1920x1080
// a 1080p publisher. Unlike BenchmarkRender, whose participants all show
// the same two frames, each participant has two frames of its own, as
// nine decoders would give: 9 x 2 frames do not all stay in the caches.
// "workers-1" draws on the rendering goroutine alone, so that CPU time is
// the render's and nothing else's.
func BenchmarkRenderSources(b *testing.B) {
	for _, src := range []layout.Size{{W: 640, H: 360}, {W: 1280, H: 720}, {W: 1920, H: 1080}} {
		for _, w := range []int{0, 1} {
			name := fmt.Sprintf("grid/9/%dx%d", src.W, src.H)
			if w == 1 {
				name += "/workers-1"
			}
			b.Run(name, func(b *testing.B) {
				benchRenderFrom(b, layout.Config{}, 9, "changing", w, src, true)
			})
		}
	}
}

func benchRender(b *testing.B, cfg layout.Config, n int, mode string, workers int) {
	b.Helper()
	benchRenderFrom(b, cfg, n, mode, workers, layout.Size{W: 1280, H: 720}, false)
}

// benchRenderFrom renders n participants' frames of size src; own gives
// each participant two frames of its own rather than all the same two.
func benchRenderFrom(b *testing.B, cfg layout.Config, n int, mode string, workers int, src layout.Size, own bool) {
	b.Helper()
	c := newTestCompositor(b, Config{Canvas: layout.Size{W: 1920, H: 1080}, Layout: cfg,
		RedrawAll: mode == "redraw-all", Workers: workers})
	ids := make([]string, n)
	ps := make([]layout.Participant, n)
	frames := make([][2]*astiav.Frame, n)
	for i := range ps {
		ids[i] = fmt.Sprint("p", i)
		ps[i] = layout.Participant{ID: ids[i]}
		switch {
		case i == 0 || own:
			frames[i] = [2]*astiav.Frame{patternFrame(b, src, 2*i), patternFrame(b, src, 2*i+1)}
		default:
			frames[i] = frames[0]
		}
	}
	c.SetParticipants(ps)
	for i, id := range ids {
		if err := c.UpdateFrame(id, frames[i][0]); err != nil {
			b.Fatal(err)
		}
	}
	render(b, c)
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if mode == "changing" {
			for k, id := range ids {
				if err := c.UpdateFrame(id, frames[k][i%2]); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := c.Render(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/frame")
}

// processCPU is the CPU time of the whole process, every thread: what a
// render costs whoever draws it, which load from other processes inflates
// far less than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// patternFrame is a frame with colour bars over its top two thirds and a
// phase-shifted gradient below, so that scaling works on real content.
func patternFrame(b *testing.B, size layout.Size, phase int) *astiav.Frame {
	b.Helper()
	f := newTestFrame(b, size, Black)
	bars := []Color{White, yellow, {0, 200, 200}, green, purple, red, blue}
	w := size.W / len(bars) &^ 1
	top := size.H * 2 / 3 &^ 1
	for i, col := range bars {
		FillRect(f, layout.Rect{X: i * w, W: w, H: top}, col)
	}
	y := plane(f, 0)
	ls := f.Linesize()[0]
	for row := top; row < size.H; row++ {
		for x := 0; x < size.W; x++ {
			y[row*ls+x] = uint8(16 + (x*1280/size.W/5+phase*37+row*720/size.H)%220)
		}
	}
	return f
}
