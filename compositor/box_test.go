package compositor

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/layout"
)

func TestBoxCrop(t *testing.T) {
	for _, tc := range []struct {
		name string
		crop layout.Rect
		dst  layout.Size
		k    int
		want layout.Rect // when k > 0
	}{
		{"exact copy", layout.Rect{W: 640, H: 360}, layout.Size{W: 640, H: 360}, 1, layout.Rect{W: 640, H: 360}},
		{"small layer into a 9-up tile", layout.Rect{W: 640, H: 360}, layout.Size{W: 636, H: 358}, 1,
			layout.Rect{X: 2, W: 636, H: 358}},
		{"exact half", layout.Rect{W: 1280, H: 720}, layout.Size{W: 640, H: 360}, 2, layout.Rect{W: 1280, H: 720}},
		{"720p into a 9-up tile", layout.Rect{W: 1280, H: 720}, layout.Size{W: 636, H: 358}, 2,
			layout.Rect{X: 4, Y: 2, W: 1272, H: 716}},
		{"1080p into a 4-up tile", layout.Rect{W: 1920, H: 1080}, layout.Size{W: 956, H: 538}, 2,
			layout.Rect{X: 4, Y: 2, W: 1912, H: 1076}},
		{"1080p into a 9-up tile", layout.Rect{W: 1920, H: 1080}, layout.Size{W: 636, H: 358}, 3,
			layout.Rect{X: 6, Y: 2, W: 1908, H: 1074}},
		{"exact third", layout.Rect{W: 1920, H: 1080}, layout.Size{W: 640, H: 360}, 3, layout.Rect{W: 1920, H: 1080}},
		{"COVER crop, offset kept", layout.Rect{X: 160, W: 960, H: 720}, layout.Size{W: 480, H: 360}, 2,
			layout.Rect{X: 160, W: 960, H: 720}},
		{"COVER crop of the 12-up grid", layout.Rect{W: 1280, H: 718}, layout.Size{W: 478, H: 268}, 0, layout.Rect{}},
		{"5 pixels too wide", layout.Rect{W: 640, H: 360}, layout.Size{W: 634, H: 360}, 0, layout.Rect{}},
		{"more than 1 % too wide", layout.Rect{W: 204, H: 100}, layout.Size{W: 200, H: 100}, 0, layout.Rect{}},
		{"1 % too wide", layout.Rect{W: 202, H: 100}, layout.Size{W: 200, H: 100}, 1, layout.Rect{W: 200, H: 100}},
		{"too small: an upscale", layout.Rect{W: 1270, H: 720}, layout.Size{W: 636, H: 358}, 0, layout.Rect{}},
		{"4-up from 720p: 1.34", layout.Rect{W: 1280, H: 720}, layout.Size{W: 956, H: 538}, 0, layout.Rect{}},
		{"odd crop", layout.Rect{W: 641, H: 360}, layout.Size{W: 640, H: 360}, 0, layout.Rect{}},
		{"odd offset", layout.Rect{X: 1, W: 640, H: 360}, layout.Size{W: 640, H: 360}, 0, layout.Rect{}},
		{"odd tile", layout.Rect{W: 640, H: 360}, layout.Size{W: 639, H: 360}, 0, layout.Rect{}},
		{"empty tile", layout.Rect{W: 640, H: 360}, layout.Size{}, 0, layout.Rect{}},
		{"small tile, exact only", layout.Rect{W: 98, H: 56}, layout.Size{W: 96, H: 54}, 0, layout.Rect{}},
		{"4x: left to libswscale", layout.Rect{W: 2560, H: 1440}, layout.Size{W: 640, H: 360}, 0, layout.Rect{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, c, ok := boxCrop(tc.crop, tc.dst)
			if ok != (tc.k > 0) || k != tc.k || (ok && c != tc.want) {
				t.Errorf("boxCrop(%v, %v) = %d, %v, %v; want %d, %v", tc.crop, tc.dst, k, c, ok, tc.k, tc.want)
			}
		})
	}
}

// FuzzBoxCrop checks boxCrop's promises for any sizes: a crop inside the
// given one, exactly k times the tile, even, cut by at most 2 tile pixels
// at each edge and 1 % of the tile on each axis.
func FuzzBoxCrop(f *testing.F) {
	f.Add(0, 0, 1280, 720, 636, 358)
	f.Add(2, 0, 640, 360, 636, 358)
	f.Add(160, 0, 960, 720, 480, 360)
	f.Add(0, 0, 1920, 1080, 636, 358)
	f.Fuzz(func(t *testing.T, x, y, w, h, dw, dh int) {
		crop := layout.Rect{X: x % 5000, Y: y % 5000, W: w % 10000, H: h % 10000}
		dst := layout.Size{W: dw % 5000, H: dh % 5000}
		k, c, ok := boxCrop(crop, dst)
		if !ok {
			return
		}
		if k < 1 || k > maxBox || c.W != k*dst.W || c.H != k*dst.H || (c.X|c.Y)&1 != 0 {
			t.Fatalf("boxCrop(%v, %v) = %d, %v", crop, dst, k, c)
		}
		if c.X < crop.X || c.Y < crop.Y || c.X+c.W > crop.X+crop.W || c.Y+c.H > crop.Y+crop.H {
			t.Fatalf("boxCrop(%v, %v) = %v, outside the crop", crop, dst, c)
		}
		for _, axis := range []struct{ before, after, tile int }{
			{c.X - crop.X, crop.X + crop.W - c.X - c.W, dst.W},
			{c.Y - crop.Y, crop.Y + crop.H - c.Y - c.H, dst.H},
		} {
			if axis.before > 2*k || axis.after > 2*k || (axis.before+axis.after)*100 > k*axis.tile {
				t.Fatalf("boxCrop(%v, %v) = %v: cuts %d and %d source pixels off an axis",
					crop, dst, c, axis.before, axis.after)
			}
		}
	})
}

// randomFrame is an I420 frame of noise: the worst case for any filter.
func randomFrame(t testing.TB, size layout.Size, seed uint64) *astiav.Frame {
	t.Helper()
	f := newTestFrame(t, size, Black)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range 3 {
		p := plane(f, i)
		for j := range p {
			p[j] = byte(r.IntN(256))
		}
	}
	return f
}

// boxReference is box_rect written the obvious way.
func boxReference(src *astiav.Frame, crop layout.Rect, dst *astiav.Frame, dx, dy, w, h, k int) {
	for i := range 3 {
		sh := min(i, 1)
		s, d := plane(src, i), plane(dst, i)
		sl, dl := src.Linesize()[i], dst.Linesize()[i]
		for y := range h >> sh {
			for x := range w >> sh {
				sum := 0
				for by := range k {
					for bx := range k {
						sum += int(s[((crop.Y>>sh)+k*y+by)*sl+(crop.X>>sh)+k*x+bx])
					}
				}
				d[((dy>>sh)+y)*dl+(dx>>sh)+x] = byte((sum + k*k/2) / (k * k))
			}
		}
	}
}

// TestBoxIntoMatchesReference: the SIMD loops give the reference's bytes
// (the rounded mean of each block), with odd widths that leave a scalar
// tail, and touch nothing outside the rectangle.
func TestBoxIntoMatchesReference(t *testing.T) {
	src := randomFrame(t, layout.Size{W: 1302, H: 740}, 1)
	for _, tc := range []struct {
		k          int
		crop       layout.Rect
		dx, dy     int
		dstW, dstH int
	}{
		{1, layout.Rect{X: 2, Y: 4, W: 636, H: 358}, 4, 0, 636, 358},
		{2, layout.Rect{X: 4, Y: 2, W: 1272, H: 716}, 642, 360, 636, 358},
		{2, layout.Rect{X: 6, Y: 8, W: 36, H: 20}, 10, 2, 18, 10}, // a chroma row of 9: all tail
		{2, layout.Rect{X: 0, Y: 0, W: 1300, H: 740}, 0, 0, 650, 370},
		{3, layout.Rect{X: 6, Y: 2, W: 1290, H: 738}, 2, 2, 430, 246}, // more than one 256-pixel chunk
		{3, layout.Rect{X: 0, Y: 0, W: 6, H: 6}, 0, 0, 2, 2},
	} {
		t.Run(fmt.Sprintf("%d/%v", tc.k, tc.crop), func(t *testing.T) {
			got := newTestFrame(t, layout.Size{W: 1300, H: 740}, bgGray)
			want := newTestFrame(t, layout.Size{W: 1300, H: 740}, bgGray)
			boxInto(src, tc.crop, got, tc.dx, tc.dy, tc.dstW, tc.dstH, tc.k)
			boxReference(src, tc.crop, want, tc.dx, tc.dy, tc.dstW, tc.dstH, tc.k)
			for i := range 3 {
				w, h, ls := 1300>>min(i, 1), 740>>min(i, 1), got.Linesize()[i]
				g, wt := plane(got, i), plane(want, i)
				for y := range h {
					if !bytes.Equal(g[y*ls:y*ls+w], wt[y*ls:y*ls+w]) {
						t.Fatalf("plane %d row %d differs from the reference", i, y)
					}
				}
			}
		})
	}
}

// psnr is the peak signal-to-noise ratio of the luma of a and b over r, dB.
func psnr(a, b *astiav.Frame, r layout.Rect) float64 {
	pa, pb := plane(a, 0), plane(b, 0)
	la, lb := a.Linesize()[0], b.Linesize()[0]
	var se float64
	for y := r.Y; y < r.Y+r.H; y++ {
		for x := r.X; x < r.X+r.W; x++ {
			d := float64(pa[y*la+x]) - float64(pb[y*lb+x])
			se += d * d
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(r.W*r.H)/se)
}

// ffmpegFrame is frame n of an FFmpeg lavfi source at size, in I420; the
// test is skipped without the FFmpeg CLI.
func ffmpegFrame(t *testing.T, src string, size layout.Size) *astiav.Frame {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg CLI")
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi",
		"-i", fmt.Sprintf("%s=size=%dx%d:rate=30", src, size.W, size.H), "-ss", "1", "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v", src, err)
	}
	f := newTestFrame(t, size, Black)
	cw, ch := size.W/2, size.H/2
	if len(out) != size.W*size.H+2*cw*ch {
		t.Fatalf("ffmpeg %s: %d bytes", src, len(out))
	}
	for i, p := range [3][]byte{out[:size.W*size.H], out[size.W*size.H : size.W*size.H+cw*ch], out[size.W*size.H+cw*ch:]} {
		w, h := size.W, size.H
		if i > 0 {
			w, h = cw, ch
		}
		d, ls := plane(f, i), f.Linesize()[i]
		for y := range h {
			copy(d[y*ls:y*ls+w], p[y*w:])
		}
	}
	return f
}

// TestBoxQuality renders a 1080p 9-up grid from FFmpeg's test pictures
// with the fast paths and with libswscale everywhere (ExactScaling), and
// compares them by luma PSNR: against libswscale's area filter on the same
// cut crop (the filter alone), and against the default path (the filter and
// the cut of up to 2 pixels an edge). Run with -v for the figures.
func TestBoxQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the FFmpeg CLI 9 times")
	}
	canvas := layout.Size{W: 1920, H: 1080}
	for _, src := range []string{"testsrc2", "mandelbrot", "smptehdbars"} {
		for _, size := range []layout.Size{{W: 640, H: 360}, {W: 1280, H: 720}, {W: 1920, H: 1080}} {
			t.Run(fmt.Sprintf("%s/%dx%d", src, size.W, size.H), func(t *testing.T) {
				f := ffmpegFrame(t, src, size)
				var frames [2]*astiav.Frame
				for i, exact := range []bool{false, true} {
					c := newTestCompositor(t, Config{Canvas: canvas, ExactScaling: exact, Workers: 1})
					pfs := make([]participantFrame, 9)
					for j := range pfs {
						pfs[j] = participantFrame{layout.Participant{ID: fmt.Sprint("p", j)}, f}
					}
					setup(t, c, pfs)
					frames[i] = render(t, c)
				}
				tile := grid9(t, canvas, size).Tiles[0]
				k, cut, ok := boxCrop(tile.Crop, layout.Size{W: tile.Video.W, H: tile.Video.H})
				if !ok {
					t.Fatalf("no box for %v into %v", tile.Crop, tile.Video)
				}
				ref := newTestFrame(t, canvas, Black)
				sc, err := newScaler(scalerKey{srcW: cut.W, srcH: cut.H, srcFmt: astiav.PixelFormatYuv420P,
					dstW: tile.Video.W, dstH: tile.Video.H, dstFmt: astiav.PixelFormatYuv420P})
				if err != nil {
					t.Fatal(err)
				}
				defer sc.free()
				if err := sc.scaleInto(f, cut, ref, tile.Video.X, tile.Video.Y, make([]byte, sc.guard())); err != nil {
					t.Fatal(err)
				}
				filter, whole := psnr(frames[0], ref, tile.Video), psnr(frames[0], frames[1], tile.Video)
				t.Logf("%s %dx%d -> %dx%d (k=%d, crop %v): PSNR %.1f dB against area on the same crop, "+
					"%.1f dB against area on the whole frame", src, size.W, size.H, tile.Video.W, tile.Video.H,
					k, cut, filter, whole)
				if filter < 40 {
					t.Errorf("box against area on the same crop: PSNR %.1f dB, want ≥ 40", filter)
				}
				if whole < 25 {
					t.Errorf("box against area on the whole frame: PSNR %.1f dB, want ≥ 25", whole)
				}
			})
		}
	}
}

// grid9 is the grid of 9 participants of size on canvas.
func grid9(t *testing.T, canvas, size layout.Size) layout.Layout {
	t.Helper()
	ps := make([]layout.Participant, 9)
	for i := range ps {
		ps[i] = layout.Participant{ID: fmt.Sprint("p", i), Video: size}
	}
	g, err := layout.Compute(canvas, ps, layout.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestRenderBoxPaths renders layouts whose tiles take each path (copy, 2x2,
// 3x3, libswscale) and checks every byte of the canvas: a tile drawn by a
// box is the reference box of its cut crop, exactly; everything else (tiles
// left to libswscale, gaps, letterbox bars, the PiP window) is what
// ExactScaling draws.
func TestRenderBoxPaths(t *testing.T) {
	hd := layout.Size{W: 1920, H: 1080}
	contain := layout.Config{Grid: &layout.GridConfig{VideoFillMode: layout.FillContain}}
	for _, tc := range []struct {
		name   string
		canvas layout.Size
		cfg    layout.Config
		n      int
		src    layout.Size
		boxes  []int // the k of each tile, 0: libswscale
	}{
		{"exact copy", layout.Size{W: 640, H: 360}, layout.Config{}, 1, layout.Size{W: 640, H: 360}, []int{1}},
		{"small layer, cut", hd, layout.Config{}, 9, layout.Size{W: 640, H: 360}, []int{1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"near half", hd, layout.Config{}, 9, layout.Size{W: 1280, H: 720}, []int{2, 2, 2, 2, 2, 2, 2, 2, 2}},
		{"near third", hd, layout.Config{}, 9, layout.Size{W: 1920, H: 1080}, []int{3, 3, 3, 3, 3, 3, 3, 3, 3}},
		{"PiP: exact halves, window scaled", hd, layout.Config{PiP: &layout.PipConfig{}}, 9,
			layout.Size{W: 1280, H: 720}, []int{2, 2, 2, 2, 2, 2, 2, 2, 0}},
		{"COVER crops", hd, layout.Config{PiP: &layout.PipConfig{}}, 12, layout.Size{W: 1280, H: 720},
			[]int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0}},
		{"CONTAIN with bars", hd, contain, 9, layout.Size{W: 960, H: 720}, []int{2, 2, 2, 2, 2, 2, 2, 2, 2}},
		{"odd source, cropped even", hd, layout.Config{}, 9, layout.Size{W: 1281, H: 721},
			[]int{2, 2, 2, 2, 2, 2, 2, 2, 2}},
		{"12-up: 2.68, libswscale", hd, layout.Config{}, 12, layout.Size{W: 1280, H: 720},
			[]int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"4-up from 720p", hd, layout.Config{}, 4, layout.Size{W: 1280, H: 720}, []int{0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := randomFrame(t, tc.src, 7)
			var canvases [2]*astiav.Frame
			var g layout.Layout
			for i, exact := range []bool{false, true} {
				c := newTestCompositor(t, Config{Canvas: tc.canvas, Layout: tc.cfg, ExactScaling: exact})
				pfs := make([]participantFrame, tc.n)
				for j := range pfs {
					pfs[j] = participantFrame{layout.Participant{ID: fmt.Sprint("p", j)}, src}
				}
				setup(t, c, pfs)
				canvases[i] = render(t, c)
				g = c.Layout()
			}
			want := newTestFrame(t, tc.canvas, Black)
			copyFrame(want, canvases[1])
			if len(g.Tiles) != len(tc.boxes) {
				t.Fatalf("%d tiles, want %d", len(g.Tiles), len(tc.boxes))
			}
			// In z-order: a tile libswscale draws over a boxed one (the PiP
			// window) is what ExactScaling drew there.
			for i, tile := range g.Tiles {
				k, cut, ok := boxCrop(tile.Crop, layout.Size{W: tile.Video.W, H: tile.Video.H})
				if k != tc.boxes[i] {
					t.Errorf("tile %d (%v from %v): box %d, want %d", i, tile.Video, tile.Crop, k, tc.boxes[i])
				}
				if ok {
					boxReference(src, cut, want, tile.Video.X, tile.Video.Y, tile.Video.W, tile.Video.H, k)
				} else {
					copyRect(want, canvases[1], tile.Tile)
				}
			}
			if y, x, p := firstDifference(canvases[0], want); p >= 0 {
				t.Errorf("plane %d differs first at (%d, %d)", p, x, y)
			}
		})
	}
}

// copyFrame copies the picture of src into dst, of the same size.
func copyFrame(dst, src *astiav.Frame) {
	for i := range 3 {
		w, h := src.Width()>>min(i, 1), src.Height()>>min(i, 1)
		d, s := plane(dst, i), plane(src, i)
		dl, sl := dst.Linesize()[i], src.Linesize()[i]
		for y := range h {
			copy(d[y*dl:y*dl+w], s[y*sl:y*sl+w])
		}
	}
}

// copyRect copies the even-aligned r of src into dst.
func copyRect(dst, src *astiav.Frame, r layout.Rect) {
	for i := range 3 {
		sh := min(i, 1)
		d, s := plane(dst, i), plane(src, i)
		dl, sl := dst.Linesize()[i], src.Linesize()[i]
		for y := r.Y >> sh; y < (r.Y+r.H)>>sh; y++ {
			copy(d[y*dl+r.X>>sh:y*dl+(r.X+r.W)>>sh], s[y*sl+r.X>>sh:])
		}
	}
}

// firstDifference is the first pixel where the pictures of a and b differ,
// and its plane; plane -1 when they are equal.
func firstDifference(a, b *astiav.Frame) (y, x, p int) {
	for i := range 3 {
		w, h := a.Width()>>min(i, 1), a.Height()>>min(i, 1)
		pa, pb := plane(a, i), plane(b, i)
		la, lb := a.Linesize()[i], b.Linesize()[i]
		for y := range h {
			for x := range w {
				if pa[y*la+x] != pb[y*lb+x] {
					return y, x, i
				}
			}
		}
	}
	return 0, 0, -1
}
