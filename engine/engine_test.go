package engine

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink"
)

var (
	red  = compositor.Color{R: 255}
	blue = compositor.Color{B: 255}
)

// script is a test source: participant A shows red, then blue from
// switchAt; the source is done at doneAt (0: never).
type script struct {
	red, blue      *astiav.Frame
	switchAt       time.Duration
	doneAt         time.Duration
	advanced       []time.Duration
	participantSet bool
}

func (s *script) Advance(t time.Duration, in Inputs) (bool, error) {
	s.advanced = append(s.advanced, t)
	if s.doneAt > 0 && t >= s.doneAt {
		return true, nil
	}
	if !s.participantSet {
		in.SetParticipants([]layout.Participant{{ID: "A"}})
		s.participantSet = true
	}
	f := s.red
	if t >= s.switchAt {
		f = s.blue
	}
	return false, in.Video("A", f)
}

func newScript(t *testing.T, size layout.Size, switchAt, doneAt time.Duration) *script {
	t.Helper()
	s := &script{switchAt: switchAt, doneAt: doneAt}
	var err error
	if s.red, err = compositor.NewFrame(size, red); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.red.Free)
	if s.blue, err = compositor.NewFrame(size, blue); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.blue.Free)
	return s
}

var small = encoder.VideoConfig{Width: 320, Height: 180, Framerate: 30, Bitrate: 400_000, Preset: "ultrafast"}

func recordingConfig(dir string) Config {
	return Config{Video: small, SegmentSeconds: 2, Destinations: []Destination{{Name: "rec",
		Recording: &Recording{Dir: dir, Thumbnails: &Thumbnails{Interval: time.Second, Sequential: true, Latest: true}}}}}
}

// TestRunRecordsWhatTheSourceFeeds: every frame's picture is the source's
// latest at that media time, the recording has the requested duration in
// segments on keyframes, and the thumbnails are in IVS's layout.
func TestRunRecordsWhatTheSourceFeeds(t *testing.T) {
	dir := t.TempDir()
	cfg := recordingConfig(dir)
	cfg.Duration = 4 * time.Second
	var seen []Frame
	cfg.OnFrame = func(f Frame) { seen = append(seen, f) }
	e, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	src := newScript(t, layout.Size{W: 64, H: 36}, 2*time.Second, 0)
	frames, err := e.Run(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if frames != 120 || len(seen) != 120 || seen[119].Index != 119 {
		t.Fatalf("frames = %d, OnFrame %d times; want 120", frames, len(seen))
	}
	if got := src.advanced[31]; got != 31*time.Second/30 {
		t.Errorf("frame 31 advanced at %v, want %v", got, 31*time.Second/30)
	}
	rendition := filepath.Join(dir, "media", "hls", "180p30")
	playlist, err := os.ReadFile(filepath.Join(rendition, "playlist.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(playlist), "#EXT-X-ENDLIST") || strings.Count(string(playlist), "#EXTINF:2.000") != 2 {
		t.Errorf("playlist: want two 2 s segments and ENDLIST:\n%s", playlist)
	}
	for i, want := range []compositor.Color{red, blue} {
		seg := filepath.Join(rendition, []string{"0.ts", "1.ts"}[i])
		if got := centre(t, seg); !near(got, want) {
			t.Errorf("segment %d centre = %v, want %v", i, got, want)
		}
		p := testmedia.FFprobe(t, "-show_streams", "-show_format", seg)
		if d := p.Duration(t); d < 1.9 || d > 2.1 {
			t.Errorf("segment %d lasts %.3f s, want 2", i, d)
		}
	}
	for _, f := range []string{"media/thumbnails/180p30/0.jpg", "media/latest_thumbnail/180p30/thumb.jpg",
		"events/recording-ended.json"} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			t.Errorf("want %s: %v", f, err)
		}
	}
	if st := e.Status(); len(st) != 1 || st[0].State != sink.StateStopped {
		t.Errorf("destination states at the end: %+v", st)
	}
}

// centre decodes the first frame of a file and returns its centre pixel.
func centre(t *testing.T, path string) compositor.Color {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-vf", "crop=2:2:159:89", "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) < 3 {
		t.Fatalf("decode %s: %v", path, err)
	}
	return compositor.Color{R: out[0], G: out[1], B: out[2]}
}

func near(a, b compositor.Color) bool {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.R, b.R) < 40 && d(a.G, b.G) < 40 && d(a.B, b.B) < 40
}

// TestSourceDoneEndsRun: a source that runs out ends the output before the
// frame it was asked for; the recording is closed.
func TestSourceDoneEndsRun(t *testing.T) {
	dir := t.TempDir()
	e, err := New(context.Background(), recordingConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	frames, err := e.Run(context.Background(), newScript(t, layout.Size{W: 64, H: 36}, time.Hour, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if frames != 15 {
		t.Errorf("frames = %d, want 15 (0.5 s at 30 fps)", frames)
	}
	if _, err := os.Stat(filepath.Join(dir, "events", "recording-ended.json")); err != nil {
		t.Errorf("recording not closed: %v", err)
	}
}

// TestRealtimeClockPacesAndCancels: in real time, frame k goes out no
// sooner than k/framerate after the run starts; cancelling the context ends the
// run without error.
func TestRealtimeClockPacesAndCancels(t *testing.T) {
	cfg := recordingConfig(t.TempDir())
	cfg.Realtime = true
	tenth := make(chan time.Time, 1)
	cfg.OnFrame = func(f Frame) {
		if f.Index == 10 {
			tenth <- time.Now()
		}
	}
	e, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	before := time.Now() // the clock starts after this
	go func() {
		_, err := e.Run(ctx, Live{})
		done <- err
	}()
	at := <-tenth
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if gap := at.Sub(before); gap < 10*time.Second/30 {
		t.Errorf("frame 10 went out %v after the run started; want at least %v", gap, 10*time.Second/30)
	}
}

func TestNewRefusesBadConfigurations(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no destination":    {Video: small},
		"odd width":         {Video: encoder.VideoConfig{Width: 321, Height: 180}, Destinations: []Destination{{Name: "x", Recording: &Recording{Dir: t.TempDir()}}}},
		"empty destination": {Video: small, Destinations: []Destination{{Name: "x"}}},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := New(context.Background(), cfg)
			if err == nil {
				e.Close()
				t.Fatal("New accepted it")
			}
		})
	}
}

func TestKeyframeInterval(t *testing.T) {
	for _, c := range []struct{ fps, seg, want int }{{30, 6, 60}, {30, 2, 60}, {30, 3, 30}, {25, 5, 25}, {60, 10, 120}} {
		got := KeyframeInterval(c.fps, c.seg)
		if got != c.want {
			t.Errorf("KeyframeInterval(%d, %d) = %d, want %d", c.fps, c.seg, got, c.want)
		}
		if (c.seg*c.fps)%got != 0 {
			t.Errorf("a %d s segment at %d fps does not end on a keyframe every %d frames", c.seg, c.fps, got)
		}
	}
}

func TestFailures(t *testing.T) {
	st := []sink.Status{{Name: "a", State: sink.StateActive}, {Name: "b", State: sink.StateFailed, LastError: "refused"},
		{Name: "c", State: sink.StateFailed, LastError: "reset"}}
	err := Failures(st)
	if err == nil || err.Error() != "destination b: refused\ndestination c: reset" {
		t.Errorf("Failures = %v", err)
	}
	if err := Failures(st[:1]); err != nil {
		t.Errorf("Failures of a healthy destination = %v", err)
	}
	if err := Failures(nil); err != nil {
		t.Errorf("Failures of no destination = %v", err)
	}
}

// TestCloseLeavesNoGoroutine: a run engine, and one closed without running,
// leave none of their goroutines (destinations, uploads, the compositor's
// tile pool) behind.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	for _, run := range []bool{true, false} {
		check := testkit.CheckGoroutines(t)
		cfg := recordingConfig(t.TempDir())
		cfg.Duration = time.Second
		e, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if run {
			if frames, err := e.Run(context.Background(), Live{}); err != nil || frames != 30 {
				t.Fatalf("ran %d frames: %v", frames, err)
			}
		}
		e.Close()
		check()
	}
}
