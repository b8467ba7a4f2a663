package compositor

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/layout"
)

var (
	red    = Color{220, 30, 30}
	green  = Color{30, 200, 60}
	blue   = Color{30, 60, 220}
	yellow = Color{230, 210, 40}
	purple = Color{150, 40, 180}
	bgGray = Color{90, 90, 90}
)

// yuvAt reads the pixel (x, y) of an I420 frame.
func yuvAt(f *astiav.Frame, x, y int) (uint8, uint8, uint8) {
	ls := f.Linesize()
	yp := plane(f, 0)
	up := plane(f, 1)
	vp := plane(f, 2)
	return yp[y*ls[0]+x], up[(y/2)*ls[1]+x/2], vp[(y/2)*ls[2]+x/2]
}

func near(a, b uint8, tol int) bool {
	d := int(a) - int(b)
	return d >= -tol && d <= tol
}

// wantColor asserts that pixel (x, y) of f shows c, within tol per component.
func wantColor(t *testing.T, f *astiav.Frame, x, y int, c Color, what string) {
	t.Helper()
	gy, gu, gv := yuvAt(f, x, y)
	wy, wu, wv := c.YUV()
	if !near(gy, wy, 2) || !near(gu, wu, 2) || !near(gv, wv, 2) {
		t.Errorf("%s at (%d,%d): got YUV %d,%d,%d, want %d,%d,%d (%s)", what, x, y, gy, gu, gv, wy, wu, wv, c)
	}
}

func centre(r layout.Rect) (int, int) { return r.X + r.W/2, r.Y + r.H/2 }

func newTestFrame(t testing.TB, size layout.Size, c Color) *astiav.Frame {
	t.Helper()
	f, err := NewFrame(size, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Free)
	return f
}

func newTestCompositor(t testing.TB, cfg Config) *Compositor {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type participantFrame struct {
	p     layout.Participant
	frame *astiav.Frame
}

// setup declares participants and feeds each its frame (nil: no frame).
func setup(t testing.TB, c *Compositor, pfs []participantFrame) {
	t.Helper()
	ps := make([]layout.Participant, len(pfs))
	for i, pf := range pfs {
		ps[i] = pf.p
	}
	c.SetParticipants(ps)
	for _, pf := range pfs {
		if pf.frame != nil {
			if err := c.UpdateFrame(pf.p.ID, pf.frame); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func render(t testing.TB, c *Compositor) *astiav.Frame {
	t.Helper()
	f, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func gap(n int) *int { return &n }

func TestGridPixels(t *testing.T) {
	canvas := layout.Size{W: 640, H: 360}
	colors := []Color{red, green, blue, yellow}
	c := newTestCompositor(t, Config{Canvas: canvas, Background: bgGray, Layout: layout.Config{Grid: &layout.GridConfig{GridGap: gap(8)}}})
	var pfs []participantFrame
	for i, col := range colors {
		pfs = append(pfs, participantFrame{layout.Participant{ID: fmt.Sprint("p", i)}, newTestFrame(t, layout.Size{W: 320, H: 180}, col)})
	}
	setup(t, c, pfs)
	out := render(t, c)
	g := c.Layout()
	if len(g.Tiles) != 4 {
		t.Fatalf("got %d tiles, want 4", len(g.Tiles))
	}
	for i, tile := range g.Tiles {
		x, y := centre(tile.Tile)
		wantColor(t, out, x, y, colors[i], "tile centre")
		// The tile's own corners are the participant's colour too: COVER of a
		// 16:9 frame into a 16:9 tile leaves no bar.
		wantColor(t, out, tile.Tile.X+1, tile.Tile.Y+1, colors[i], "tile corner")
		wantColor(t, out, tile.Tile.X+tile.Tile.W-2, tile.Tile.Y+tile.Tile.H-2, colors[i], "tile corner")
	}
	// The gap between the first two tiles, and between the rows, is background.
	a, b := g.Tiles[0].Tile, g.Tiles[1].Tile
	if b.X-(a.X+a.W) != 8 {
		t.Fatalf("horizontal gap %d, want 8", b.X-(a.X+a.W))
	}
	for x := a.X + a.W; x < b.X; x++ {
		wantColor(t, out, x, a.Y+a.H/2, bgGray, "horizontal gap")
	}
	d := g.Tiles[2].Tile
	for y := a.Y + a.H; y < d.Y; y++ {
		wantColor(t, out, a.X+a.W/2, y, bgGray, "vertical gap")
	}
	wantColor(t, out, 0, 0, bgGray, "canvas corner outside the grid")
}

func TestFillModes(t *testing.T) {
	// A 16:9 source striped red | green | blue: the outer stripes are exactly
	// the parts COVER crops away for a square tile (280 px each side of 1280).
	src := newTestFrame(t, layout.Size{W: 1280, H: 720}, green)
	FillRect(src, layout.Rect{W: 280, H: 720}, red)
	FillRect(src, layout.Rect{X: 1000, W: 280, H: 720}, blue)

	canvas := layout.Size{W: 360, H: 360} // one SQUARE tile fills it
	cases := []struct {
		fill              layout.FillMode
		left, mid, right  Color
		barTop, barBottom bool
	}{
		{layout.FillCover, green, green, green, false, false},
		{layout.FillFill, red, green, blue, false, false},
		{layout.FillContain, red, green, blue, true, true},
	}
	for _, tc := range cases {
		t.Run(string(tc.fill), func(t *testing.T) {
			c := newTestCompositor(t, Config{Canvas: canvas, Background: bgGray, Layout: layout.Config{Grid: &layout.GridConfig{
				VideoAspectRatio: layout.AspectSquare, VideoFillMode: tc.fill,
			}}})
			setup(t, c, []participantFrame{{layout.Participant{ID: "a"}, src}})
			out := render(t, c)
			v := c.Layout().Tiles[0].Video
			mid := v.Y + v.H/2
			wantColor(t, out, v.X+1, mid, tc.left, "left edge of the picture")
			wantColor(t, out, v.X+v.W/2, mid, tc.mid, "middle of the picture")
			wantColor(t, out, v.X+v.W-2, mid, tc.right, "right edge of the picture")
			if tc.barTop {
				// 16:9 in a 360x360 tile: picture 360x202 centred, bars of 78/80 px.
				if v.H != 202 || v.Y != 78 {
					t.Fatalf("letterboxed picture %+v, want 360x202 at y=78", v)
				}
				wantColor(t, out, 180, 10, bgGray, "top letterbox bar")
				wantColor(t, out, 180, 350, bgGray, "bottom letterbox bar")
				wantColor(t, out, 180, v.Y-1, bgGray, "last row of the top bar")
				wantColor(t, out, 180, v.Y+v.H, bgGray, "first row of the bottom bar")
			} else {
				wantColor(t, out, 180, 1, tc.mid, "top row")
			}
		})
	}
}

func TestPipPositions(t *testing.T) {
	canvas := layout.Size{W: 640, H: 360}
	for _, pos := range []layout.PipPosition{layout.PipTopLeft, layout.PipTopRight, layout.PipBottomLeft, layout.PipBottomRight} {
		t.Run(string(pos), func(t *testing.T) {
			c := newTestCompositor(t, Config{Canvas: canvas, Layout: layout.Config{PiP: &layout.PipConfig{
				PipPosition: pos, PipOffset: gap(10), PipParticipantAttribute: "pip",
			}}})
			setup(t, c, []participantFrame{
				{layout.Participant{ID: "host"}, newTestFrame(t, layout.Size{W: 1280, H: 720}, blue)},
				{layout.Participant{ID: "guest", Attributes: map[string]string{"pip": "true"}}, newTestFrame(t, layout.Size{W: 640, H: 360}, yellow)},
			})
			out := render(t, c)
			g := c.Layout()
			pip := g.Tiles[len(g.Tiles)-1]
			if pip.ID != "guest" || pip.Slot != layout.SlotPiP {
				t.Fatalf("top tile %+v, want the guest's PiP window", pip)
			}
			w := pip.Tile
			// 160x90: a quarter of the canvas, 16:9; 10 px from the nearest edges.
			if w.W != 160 || w.H != 90 {
				t.Fatalf("PiP window %+v, want 160x90", w)
			}
			x, y := centre(w)
			wantColor(t, out, x, y, yellow, "PiP window centre")
			wantColor(t, out, w.X+1, w.Y+1, yellow, "PiP window corner")
			// Just outside the window, on its inner sides, the host shows.
			inX := w.X - 3
			if w.X < canvas.W/2 {
				inX = w.X + w.W + 2
			}
			inY := w.Y - 3
			if w.Y < canvas.H/2 {
				inY = w.Y + w.H + 2
			}
			wantColor(t, out, inX, y, blue, "host beside the window")
			wantColor(t, out, x, inY, blue, "host below/above the window")
			// The offset strip between the window and the canvas edge is the host too.
			edgeX := 4
			if w.X > canvas.W/2 {
				edgeX = canvas.W - 4
			}
			wantColor(t, out, edgeX, y, blue, "offset strip")
			wantOffset := map[layout.PipPosition][2]int{
				layout.PipTopLeft: {10, 10}, layout.PipTopRight: {640 - 10 - 160, 10},
				layout.PipBottomLeft: {10, 360 - 10 - 90}, layout.PipBottomRight: {640 - 10 - 160, 360 - 10 - 90},
			}[pos]
			if w.X != wantOffset[0] || w.Y != wantOffset[1] {
				t.Fatalf("window at %d,%d, want %v", w.X, w.Y, wantOffset)
			}
		})
	}
}

func TestPlaceholderAndMissingFrames(t *testing.T) {
	placeholder := Color{10, 10, 120}
	c := newTestCompositor(t, Config{Canvas: layout.Size{W: 640, H: 360}, Placeholder: &placeholder})
	setup(t, c, []participantFrame{
		{layout.Participant{ID: "live"}, newTestFrame(t, layout.Size{W: 320, H: 180}, red)},
		{layout.Participant{ID: "stopped", VideoStopped: true}, newTestFrame(t, layout.Size{W: 320, H: 180}, green)},
		{layout.Participant{ID: "no-frame-yet"}, nil},
	})
	out := render(t, c)
	for _, tile := range c.Layout().Tiles {
		x, y := centre(tile.Tile)
		want := placeholder
		if tile.ID == "live" {
			want = red
		}
		wantColor(t, out, x, y, want, tile.ID)
	}
}

func TestSkipsUnchangedTiles(t *testing.T) {
	c := newTestCompositor(t, Config{Canvas: layout.Size{W: 640, H: 360}, Layout: layout.Config{PiP: &layout.PipConfig{}}})
	host := newTestFrame(t, layout.Size{W: 640, H: 360}, blue)
	host2 := newTestFrame(t, layout.Size{W: 640, H: 360}, green)
	guest := newTestFrame(t, layout.Size{W: 640, H: 360}, yellow)
	guest2 := newTestFrame(t, layout.Size{W: 640, H: 360}, purple)
	setup(t, c, []participantFrame{{layout.Participant{ID: "host"}, host}, {layout.Participant{ID: "guest"}, guest}})

	step := func(name string, wantScaled, wantSkipped uint64) *astiav.Frame {
		t.Helper()
		before := c.Stats()
		out := render(t, c)
		after := c.Stats()
		if s := after.TilesScaled - before.TilesScaled; s != wantScaled {
			t.Errorf("%s: scaled %d tiles, want %d", name, s, wantScaled)
		}
		if s := after.TilesSkipped - before.TilesSkipped; s != wantSkipped {
			t.Errorf("%s: skipped %d tiles, want %d", name, s, wantSkipped)
		}
		return out
	}
	step("first render", 2, 0)
	step("nothing new", 0, 2)
	if err := c.UpdateFrame("guest", guest2); err != nil {
		t.Fatal(err)
	}
	out := step("new PiP frame", 1, 1)
	pip := c.Layout().Tiles[1].Tile
	px, py := centre(pip)
	wantColor(t, out, px, py, purple, "PiP after its update")
	wantColor(t, out, 20, 20, blue, "host untouched")
	// A new host frame repaints the background under the window, so the
	// window must be drawn again even though its frame did not change.
	if err := c.UpdateFrame("host", host2); err != nil {
		t.Fatal(err)
	}
	out = step("new host frame", 2, 0)
	wantColor(t, out, px, py, purple, "PiP redrawn over the new host frame")
	wantColor(t, out, 20, 20, green, "host after its update")

	redraw := newTestCompositor(t, Config{Canvas: layout.Size{W: 640, H: 360}, RedrawAll: true})
	setup(t, redraw, []participantFrame{{layout.Participant{ID: "host"}, host}})
	render(t, redraw)
	render(t, redraw)
	if s := redraw.Stats(); s.TilesScaled != 2 || s.TilesSkipped != 0 {
		t.Errorf("RedrawAll: %+v, want every render to scale", s)
	}
}

func TestRelayoutOnJoinLeaveAndResize(t *testing.T) {
	c := newTestCompositor(t, Config{Canvas: layout.Size{W: 640, H: 360}, Background: bgGray})
	a := newTestFrame(t, layout.Size{W: 320, H: 180}, red)
	b := newTestFrame(t, layout.Size{W: 320, H: 180}, green)
	setup(t, c, []participantFrame{{layout.Participant{ID: "a"}, a}})
	out := render(t, c)
	wantColor(t, out, 320, 180, red, "single participant fills the canvas")

	setup(t, c, []participantFrame{{layout.Participant{ID: "a"}, a}, {layout.Participant{ID: "b"}, b}})
	out = render(t, c)
	g := c.Layout()
	if len(g.Tiles) != 2 {
		t.Fatalf("%d tiles after a join, want 2", len(g.Tiles))
	}
	wantColor(t, out, 320, 20, bgGray, "area above the two tiles is background again")
	x, y := centre(g.Tiles[1].Tile)
	wantColor(t, out, x, y, green, "joined participant")

	// A portrait frame of the same participant: CROP changes, the tile does not.
	portrait := newTestFrame(t, layout.Size{W: 180, H: 320}, blue)
	if err := c.UpdateFrame("b", portrait); err != nil {
		t.Fatal(err)
	}
	out = render(t, c)
	tile := c.Layout().Tiles[1]
	if tile.Crop.W != 180 || tile.Crop.H >= 320 {
		t.Errorf("crop of the portrait frame %+v, want full width, cropped height", tile.Crop)
	}
	wantColor(t, out, x, y, blue, "participant after a resolution change")

	setup(t, c, []participantFrame{{layout.Participant{ID: "b"}, nil}})
	out = render(t, c)
	wantColor(t, out, 320, 180, blue, "remaining participant fills the canvas")
	if err := c.UpdateFrame("a", a); !errors.Is(err, ErrUnknownParticipant) {
		t.Errorf("frame of a participant who left: err %v, want ErrUnknownParticipant", err)
	}
}

func TestConvertsOtherPixelFormats(t *testing.T) {
	rgb := astiav.AllocFrame()
	t.Cleanup(rgb.Free)
	rgb.SetWidth(320)
	rgb.SetHeight(180)
	rgb.SetPixelFormat(astiav.PixelFormatRgba)
	if err := rgb.AllocBuffer(0); err != nil {
		t.Fatal(err)
	}
	px := plane(rgb, 0)
	ls := rgb.Linesize()[0]
	for y := 0; y < 180; y++ {
		for x := 0; x < 320; x++ {
			copy(px[y*ls+4*x:], []byte{purple.R, purple.G, purple.B, 255})
		}
	}
	c := newTestCompositor(t, Config{Canvas: layout.Size{W: 640, H: 360}})
	setup(t, c, []participantFrame{{layout.Participant{ID: "rgb"}, rgb}})
	wantColor(t, render(t, c), 320, 180, purple, "RGBA frame converted to I420")
}

func TestRejectsBadConfig(t *testing.T) {
	cases := map[string]Config{
		"odd canvas":   {Canvas: layout.Size{W: 641, H: 360}},
		"negative gap": {Canvas: layout.Size{W: 640, H: 360}, Layout: layout.Config{Grid: &layout.GridConfig{GridGap: gap(-1)}}},
		"pip too big":  {Canvas: layout.Size{W: 640, H: 360}, Layout: layout.Config{PiP: &layout.PipConfig{PipWidth: gap(800)}}},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			var ve *layout.ValidationError
			if _, err := New(cfg); !errors.As(err, &ve) {
				t.Fatalf("New: err %v, want a layout.ValidationError", err)
			}
		})
	}
}

func TestRenderAllocatesNothing(t *testing.T) {
	c := newTestCompositor(t, Config{Canvas: layout.Size{W: 640, H: 360}})
	frames := [2]*astiav.Frame{newTestFrame(t, layout.Size{W: 320, H: 180}, red), newTestFrame(t, layout.Size{W: 320, H: 180}, blue)}
	var pfs []participantFrame
	for i := 0; i < 4; i++ {
		pfs = append(pfs, participantFrame{layout.Participant{ID: fmt.Sprint(i)}, frames[0]})
	}
	setup(t, c, pfs)
	render(t, c)
	ids := []string{"0", "1", "2", "3"}
	n := 0
	allocs := testing.AllocsPerRun(50, func() {
		n++
		for _, id := range ids {
			if err := c.UpdateFrame(id, frames[n%2]); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Render(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per updated and rendered frame, want 0", allocs)
	}
}

// TestConcurrentFeedAndRender runs decoders and the output clock at once;
// with -race it checks the locking, and it checks nothing is left running.
func TestConcurrentFeedAndRender(t *testing.T) {
	check := testkit.CheckGoroutines(t)
	c := newTestCompositor(t, Config{Canvas: layout.Size{W: 320, H: 180}})
	colors := []Color{red, green, blue}
	var pfs []participantFrame
	for i := range colors {
		pfs = append(pfs, participantFrame{layout.Participant{ID: fmt.Sprint(i)}, nil})
	}
	setup(t, c, pfs)
	var wg, fed sync.WaitGroup
	done := make(chan struct{})
	for i, col := range colors {
		f := newTestFrame(t, layout.Size{W: 160, H: 90}, col)
		wg.Add(1)
		fed.Add(1)
		go func() {
			defer wg.Done()
			for first := true; ; first = false {
				select {
				case <-done:
					return
				default:
				}
				err := c.UpdateFrame(fmt.Sprint(i), f)
				if first {
					fed.Done()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	fed.Wait()
	for i := 0; i < 200; i++ {
		render(t, c)
	}
	close(done)
	wg.Wait()
	out := render(t, c)
	for i, tile := range c.Layout().Tiles {
		x, y := centre(tile.Tile)
		wantColor(t, out, x, y, colors[i], "after concurrent updates")
	}
	c.Close() // ends the tile-drawing goroutines; the cleanup's Close is then a no-op
	check()
}
