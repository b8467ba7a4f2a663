package thumbnail

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/avframe"
)

// solid returns a w x h YUV420P frame of one colour.
func solid(t *testing.T, w, h int, y, u, v byte) *astiav.Frame {
	t.Helper()
	f := astiav.AllocFrame()
	f.SetWidth(w)
	f.SetHeight(h)
	f.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := f.AllocBuffer(0); err != nil {
		t.Fatal(err)
	}
	for i, c := range []byte{y, u, v} {
		plane, _ := avframe.VideoPlane(f, i)
		for k := range plane {
			plane[k] = c
		}
	}
	return f
}

func TestIntervalAndStorage(t *testing.T) {
	cases := []struct {
		name          string
		seq, latest   bool
		width, height int
		times         []time.Duration
		wantFiles     []string
		writes        int // files written, LATEST rewrites included
	}{
		{"sequential at the interval", true, false, 0, 0, []time.Duration{0, time.Second, 2 * time.Second, 3900 * time.Millisecond, 4 * time.Second}, []string{"seq/0.jpg", "seq/1.jpg", "seq/2.jpg"}, 3},
		{"both, scaled", true, true, 160, 90, []time.Duration{0, 2 * time.Second}, []string{"seq/0.jpg", "seq/1.jpg", "latest/thumb.jpg"}, 4},
		{"latest only", false, true, 0, 0, []time.Duration{0, 5 * time.Second}, []string{"latest/thumb.jpg"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, Interval: 2 * time.Second, Width: c.width, Height: c.height}
			if c.seq {
				cfg.SequentialDir = "seq"
			}
			if c.latest {
				cfg.LatestDir = "latest"
			}
			var written []string
			cfg.OnFile = func(rel string) { written = append(written, rel) }
			w, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			f := solid(t, 320, 180, 81, 90, 240) // red
			defer f.Free()
			for _, at := range c.times {
				if err := w.Offer(f, at); err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range c.wantFiles {
				b, err := os.ReadFile(filepath.Join(dir, want))
				if err != nil {
					t.Fatalf("%s: %v (written %v)", want, err, written)
				}
				img, err := jpeg.Decode(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				ww, wh := c.width, c.height
				if ww == 0 {
					ww, wh = 320, 180
				}
				if s := img.Bounds().Size(); s.X != ww || s.Y != wh {
					t.Errorf("%s: %v, want %dx%d", want, s, ww, wh)
				}
				r, g, b2, _ := img.At(ww/2, wh/2).RGBA()
				if r>>8 < 200 || g>>8 > 60 || b2>>8 > 60 {
					t.Errorf("%s: centre pixel %d,%d,%d, want red", want, r>>8, g>>8, b2>>8)
				}
			}
			if n := len(written); n != c.writes {
				t.Errorf("written %v, want %v", written, c.wantFiles)
			}
		})
	}
}
