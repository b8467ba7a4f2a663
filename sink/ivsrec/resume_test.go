package ivsrec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/testmedia"
)

// TestResumeContinuesThePlaylist records a run that is handed off, then a
// second run that resumes it after a reserved gap (a segment number a dead
// run used), and checks the one playlist: the first run's segments kept
// byte for byte, EXT-X-DISCONTINUITY, numbering continued past the gap,
// one recording-started event, an ended playlist.
func TestResumeContinuesThePlaylist(t *testing.T) {
	dir := t.TempDir()
	var first []Segment
	record(t, dir, 4, 2, func(c *Config, r *Recorder) {
		if c != nil {
			c.OnSegment = func(s Segment) error { first = append(first, s); return nil }
		} else {
			r.Handoff()
		}
	})
	media := filepath.Join(dir, "media", "hls", "180p30-TestRendition")
	pl := readFile(t, filepath.Join(media, "playlist.m3u8"))
	if strings.Contains(pl, "#EXT-X-ENDLIST") {
		t.Fatalf("handed-off playlist is ended:\n%s", pl)
	}
	got, err := ReadPlaylist([]byte(pl))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != first[0] || got[1] != first[1] {
		t.Fatalf("read back %+v, the run reported %+v", got, first)
	}
	seg1 := readFile(t, filepath.Join(media, "1.ts"))
	started := readFile(t, filepath.Join(dir, "events", "recording-started.json"))

	var second []Segment
	record(t, dir, 4, 2, func(c *Config, _ *Recorder) {
		if c != nil {
			c.Resume = &Resume{Segments: got, Next: 3} // 2 was used by a run that died
			c.OnSegment = func(s Segment) error { second = append(second, s); return nil }
		}
	})
	want := []Segment{{Index: 3, Duration: 2, Discontinuity: true}, {Index: 4, Duration: 2}}
	if len(second) != 2 || second[0] != want[0] || second[1] != want[1] {
		t.Fatalf("second run's segments %+v, want %+v", second, want)
	}
	pl = readFile(t, filepath.Join(media, "playlist.m3u8"))
	all, err := ReadPlaylist([]byte(pl))
	if err != nil {
		t.Fatal(err)
	}
	wantAll := append(append([]Segment{}, first...), want...)
	if len(all) != len(wantAll) {
		t.Fatalf("playlist has %+v, want %+v", all, wantAll)
	}
	for i := range all {
		if all[i] != wantAll[i] {
			t.Errorf("playlist segment %d: %+v, want %+v", i, all[i], wantAll[i])
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(pl), "#EXT-X-ENDLIST") || strings.Count(pl, "#EXT-X-DISCONTINUITY") != 1 {
		t.Errorf("want one discontinuity and an ended playlist:\n%s", pl)
	}
	if _, err := os.Stat(filepath.Join(media, "2.ts")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("2.ts exists: the reserved number was reused (%v)", err)
	}
	if readFile(t, filepath.Join(media, "1.ts")) != seg1 {
		t.Error("the first run's segment 1 was overwritten")
	}
	if readFile(t, filepath.Join(dir, "events", "recording-started.json")) != started {
		t.Error("the resumed run rewrote recording-started.json")
	}
	if _, err := os.Stat(filepath.Join(dir, "events", "recording-ended.json")); err != nil {
		t.Errorf("no recording-ended event after the last run: %v", err)
	}
}

// TestHooksFailTheRecording: an Admit or OnSegment error stops the
// recording's writes and ends it with recording-failed.
func TestHooksFailTheRecording(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
	}{
		{"admit", func(c *Config) {
			n := 0
			c.Admit = func(int) error {
				if n++; n > 1 {
					return errors.New("spool full")
				}
				return nil
			}
		}},
		{"on segment", func(c *Config) { c.OnSegment = func(Segment) error { return errors.New("taken over") } }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := testmedia.New(t, testmedia.Options{Seconds: 4, KeyframeInterval: 60, NoAudio: true})
			cfg := Config{Dir: dir, Rendition: "r", SegmentSeconds: 2, Framerate: 30,
				Video: Stream{Params: m.Video, TimeBase: m.VideoTimeBase}}
			tc.set(&cfg)
			rec, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var writeErr error
			m.Run(t, func(p *astiav.Packet, stream int) {
				if err := rec.Write(t.Context(), p, stream); err != nil && writeErr == nil {
					writeErr = err
				}
			}, nil)
			_ = rec.Close(t.Context())
			if writeErr == nil {
				t.Fatal("no write failed")
			}
			if _, err := os.Stat(filepath.Join(dir, "events", "recording-failed.json")); err != nil {
				t.Errorf("no recording-failed event: %v", err)
			}
			if rec.Segments() > 1 {
				t.Errorf("%d segments finished after the hook failed", rec.Segments())
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDetachedRunLeavesTheRecordingAlone: a run told that another run took
// the recording over writes no playlist, no event and no partial segment.
func TestDetachedRunLeavesTheRecordingAlone(t *testing.T) {
	dir := t.TempDir()
	m := testmedia.New(t, testmedia.Options{Seconds: 5, KeyframeInterval: 60, NoAudio: true})
	finished := 0
	rec, err := New(Config{Dir: dir, Rendition: "r", SegmentSeconds: 2, Framerate: 30,
		Video: Stream{Params: m.Video, TimeBase: m.VideoTimeBase},
		OnSegment: func(Segment) error {
			if finished++; finished > 1 {
				return fmt.Errorf("composition moved: %w", ErrDetached)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	media := filepath.Join(dir, "media", "hls", "r")
	var before string
	m.Run(t, func(p *astiav.Packet, stream int) {
		if err := rec.Write(t.Context(), p, stream); errors.Is(err, ErrDetached) && before == "" {
			before = readFile(t, filepath.Join(media, "playlist.m3u8"))
		}
	}, nil)
	if before == "" {
		t.Fatal("no write reported ErrDetached")
	}
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := readFile(t, filepath.Join(media, "playlist.m3u8")); after != before {
		t.Errorf("playlist changed after the run was detached:\n%s\nthen\n%s", before, after)
	}
	for _, f := range []string{"recording-ended.json", "recording-failed.json"} {
		if _, err := os.Stat(filepath.Join(dir, "events", f)); err == nil {
			t.Errorf("a detached run wrote %s", f)
		}
	}
	if parts, _ := filepath.Glob(filepath.Join(media, "*.part")); len(parts) > 0 {
		t.Errorf("partial segments left: %v", parts)
	}
}
