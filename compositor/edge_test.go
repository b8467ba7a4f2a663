package compositor

import (
	"fmt"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/layout"
)

// TestOddAndExtremeFrameSizes feeds frames a decoder may produce (odd sizes,
// slivers, frames larger than the canvas) and checks each is drawn, or
// replaced by a placeholder, without failing the render.
func TestOddAndExtremeFrameSizes(t *testing.T) {
	sizes := []layout.Size{{W: 1, H: 1}, {W: 2, H: 2}, {W: 3, H: 3}, {W: 7, H: 5}, {W: 641, H: 361}, {W: 2, H: 1000}, {W: 1000, H: 2}, {W: 4096, H: 2160}, {W: 16, H: 4000}}
	for _, fill := range []layout.FillMode{layout.FillCover, layout.FillContain, layout.FillFill} {
		for _, s := range sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", fill, s.W, s.H), func(t *testing.T) {
				c := newTestCompositor(t, Config{Canvas: layout.Size{W: 320, H: 180}, Layout: layout.Config{Grid: &layout.GridConfig{VideoFillMode: fill}}})
				setup(t, c, []participantFrame{
					{layout.Participant{ID: "odd"}, newTestFrame(t, s, red)},
					{layout.Participant{ID: "fine"}, newTestFrame(t, layout.Size{W: 320, H: 180}, green)},
				})
				out := render(t, c)
				tiles := c.Layout().Tiles
				x, y := centre(tiles[1].Tile)
				wantColor(t, out, x, y, green, "the other participant")
				x, y = centre(tiles[0].Video)
				want := red
				if s.W < 2 || s.H < 2 {
					want = PlaceholderGray
				}
				wantColor(t, out, x, y, want, "the odd-sized participant")
			})
		}
	}
}

// TestUndrawableFrameGetsPlaceholder feeds a frame in a format libswscale
// cannot read (a hardware surface format): that tile shows the placeholder,
// the others are drawn, and the render does not fail.
func TestUndrawableFrameGetsPlaceholder(t *testing.T) {
	bad := newTestFrame(t, layout.Size{W: 320, H: 180}, red)
	bad.SetPixelFormat(astiav.PixelFormatVaapi)
	c := newTestCompositor(t, Config{Canvas: layout.Size{W: 640, H: 360}})
	setup(t, c, []participantFrame{
		{layout.Participant{ID: "bad"}, bad},
		{layout.Participant{ID: "good"}, newTestFrame(t, layout.Size{W: 320, H: 180}, green)},
	})
	out := render(t, c)
	tiles := c.Layout().Tiles
	x, y := centre(tiles[0].Tile)
	wantColor(t, out, x, y, PlaceholderGray, "undrawable participant")
	x, y = centre(tiles[1].Tile)
	wantColor(t, out, x, y, green, "the other participant")
	render(t, c)
	if s := c.Stats(); s.TileErrors != 1 || s.TilesScaled != 1 {
		t.Errorf("stats %+v: want 1 tile error (not retried without a new frame) and 1 tile scaled", s)
	}
}
