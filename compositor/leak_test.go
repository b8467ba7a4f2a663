package compositor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/layout"
)

// rssBytes reads this process's resident set size.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// TestNoCMemoryGrowth cycles everything that allocates C memory — whole
// compositors with 1080p canvases, participants joining and leaving with
// frames that need a conversion buffer, layout changes that create scaler
// contexts — far more often than a leak could hide in: 300 leaked 1080p
// canvases alone would be 900 MB.
func TestNoCMemoryGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("long-running")
	}
	rgba := astiav.AllocFrame()
	t.Cleanup(rgba.Free)
	rgba.SetWidth(1280)
	rgba.SetHeight(720)
	rgba.SetPixelFormat(astiav.PixelFormatRgba)
	if err := rgba.AllocBuffer(0); err != nil {
		t.Fatal(err)
	}
	yuv := newTestFrame(t, layout.Size{W: 640, H: 360}, red)
	cycle := func() {
		c, err := New(Config{Canvas: layout.Size{W: 1920, H: 1080}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for k := 0; k < 3; k++ {
			ps := []layout.Participant{{ID: "rgba"}, {ID: fmt.Sprint("yuv", k)}}
			c.SetParticipants(ps)
			if err := c.UpdateFrame("rgba", rgba); err != nil {
				t.Fatal(err)
			}
			if err := c.UpdateFrame(ps[1].ID, yuv); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Render(); err != nil {
				t.Fatal(err)
			}
			c.SetParticipants(ps[1:]) // rgba leaves: its conversion frame is released
			if _, err := c.Render(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 20; i++ { // warm up allocators and caches
		cycle()
	}
	before := rssBytes(t)
	for i := 0; i < 300; i++ {
		cycle()
	}
	grown := rssBytes(t) - before
	t.Logf("RSS grew by %d KiB over 300 cycles", grown/1024)
	if grown > 64<<20 {
		t.Errorf("RSS grew by %d MiB over 300 compositor cycles: C memory is leaking", grown>>20)
	}
}
