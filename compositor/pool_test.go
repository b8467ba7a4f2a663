package compositor

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/layout"
)

// TestParallelDrawingMatchesSerial renders the same stages with one drawing
// goroutine and with several: the canvases must be identical, PiP windows
// (which overlap the tile below) included.
func TestParallelDrawingMatchesSerial(t *testing.T) {
	colors := []Color{red, green, blue, yellow, purple, White, bgGray, Black, red}
	for _, tc := range []struct {
		name string
		cfg  layout.Config
		n    int
	}{
		{"grid-9", layout.Config{}, 9},
		{"grid-featured", layout.Config{}, 5},
		{"pip", layout.Config{PiP: &layout.PipConfig{}}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pfs []participantFrame
			for i := 0; i < tc.n; i++ {
				p := layout.Participant{ID: fmt.Sprint(i)}
				if tc.name == "grid-featured" && i == 2 {
					p.Attributes = map[string]string{"featured": "true"}
				}
				pfs = append(pfs, participantFrame{p, newTestFrame(t, layout.Size{W: 320 + 32*i, H: 180 + 18*i}, colors[i])})
			}
			pfs[1].frame = nil // a placeholder among the tiles
			canvases := make([][]byte, 0, 2)
			for _, workers := range []int{1, 4} {
				cfg := Config{Canvas: layout.Size{W: 960, H: 540}, Layout: tc.cfg, Workers: workers}
				if tc.name == "grid-featured" {
					cfg.Layout.Grid = &layout.GridConfig{FeaturedParticipantAttribute: "featured"}
				}
				c := newTestCompositor(t, cfg)
				setup(t, c, pfs)
				render(t, c)
				// A second render with one new frame redraws that tile and what lies above it.
				if err := c.UpdateFrame("0", pfs[2].frame); err != nil {
					t.Fatal(err)
				}
				canvases = append(canvases, canvasBytes(render(t, c)))

			}
			if !bytes.Equal(canvases[0], canvases[1]) {
				t.Error("the canvas drawn in parallel differs from the one drawn serially")
			}
		})
	}
}

func canvasBytes(f *astiav.Frame) []byte {
	var b []byte
	for i := 0; i < 3; i++ {
		b = append(b, plane(f, i)...)
	}
	return b
}

// TestCloseEndsDrawingGoroutines checks that the pool's goroutines are the
// compositor's: they exist while it is open and end with Close.
func TestCloseEndsDrawingGoroutines(t *testing.T) {
	g := testkit.SnapshotGoroutines()
	c, err := New(Config{Canvas: layout.Size{W: 320, H: 180}, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Only the pool's, started or not yet scheduled: the runtime may start
	// one to run finalizers.
	n := 0
	for _, s := range g.Started() {
		if strings.Contains(s, "created by github.com/stagehand-rt/stagehand/compositor.startTilePool") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d drawing goroutines with a 4-worker compositor open, want 3", n)
	}
	c.Close()
	g.CheckEnded(t)
}

// TestScalingStaysInItsTile: libswscale writes rows rounded up to 8 pixels,
// past a 956-pixel tile into the gap and the next tile. The gap must keep
// the background, and a tile left unchanged must keep its own pixels while
// its left neighbour is redrawn.
func TestScalingStaysInItsTile(t *testing.T) {
	c := newTestCompositor(t, Config{Canvas: layout.Size{W: 1920, H: 1080}, Background: bgGray})
	var pfs []participantFrame
	for i, col := range []Color{red, green, blue, yellow} {
		pfs = append(pfs, participantFrame{layout.Participant{ID: fmt.Sprint(i)}, newTestFrame(t, layout.Size{W: 1280, H: 720}, col)})
	}
	setup(t, c, pfs)
	render(t, c)
	before := canvasBytes(render(t, c))
	if err := c.UpdateFrame("0", newTestFrame(t, layout.Size{W: 1280, H: 720}, purple)); err != nil {
		t.Fatal(err)
	}
	out := render(t, c)
	tiles := c.Layout().Tiles
	if tiles[0].Video.W%8 == 0 {
		t.Fatalf("tile width %d: the test needs one that is not a multiple of 8", tiles[0].Video.W)
	}
	ls := out.Linesize()
	right := tiles[0].Video.X + tiles[0].Video.W // the gap starts here
	for y := 0; y < tiles[0].Video.H; y += 2 {
		for x := right; x < tiles[1].Tile.X; x++ {
			wantColor(t, out, x, y, bgGray, "gap right of a redrawn tile")
		}
		for x := tiles[1].Tile.X; x < tiles[1].Tile.X+8; x++ {
			if got, want := plane(out, 0)[y*ls[0]+x], before[y*ls[0]+x]; got != want {
				t.Fatalf("unchanged tile's pixel (%d,%d) changed from %d to %d when its neighbour was redrawn", x, y, want, got)
			}
		}
	}
}
