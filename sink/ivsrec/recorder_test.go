package ivsrec

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/grafov/m3u8"

	"github.com/stagehand-rt/stagehand/internal/testmedia"
)

// record encodes seconds of a moving picture and a tone, and records them.
func record(t *testing.T, dir string, seconds float64, segment int, opts ...func(*Config, *Recorder)) *Recorder {
	t.Helper()
	m := testmedia.New(t, testmedia.Options{Seconds: seconds, KeyframeInterval: segment * 30})
	cfg := Config{
		Dir: dir, Rendition: "180p30-TestRendition", SegmentSeconds: segment, Framerate: 30, Bandwidth: 700_000,
		StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCDefgh",
		Video:    Stream{Params: m.Video, TimeBase: m.VideoTimeBase},
		Audio:    &Stream{Params: m.Audio, TimeBase: m.AudioTimeBase},
	}
	for _, o := range opts {
		o(&cfg, nil)
	}
	rec, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(nil, rec)
	}
	m.Run(t, func(p *astiav.Packet, stream int) {
		if err := rec.Write(context.Background(), p, stream); err != nil {
			t.Fatal(err)
		}
	}, nil)
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestRecordingIsValidHLS records 8.5 s with 2 s segments and checks the
// result with ffprobe and an m3u8 parser: every segment starts on a
// keyframe and lasts its playlist duration, the playlist ends, and the whole
// recording plays as H.264 + AAC for 8.5 s.
func TestRecordingIsValidHLS(t *testing.T) {
	dir := t.TempDir()
	rec := record(t, dir, 8.5, 2)
	if rec.Segments() != 5 {
		t.Fatalf("%d segments, want 5 (4 of 2 s and one of 0.5 s)", rec.Segments())
	}
	media := filepath.Join(dir, "media", "hls", "180p30-TestRendition")
	f, err := os.Open(filepath.Join(media, "playlist.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pl, kind, err := m3u8.DecodeFrom(f, true)
	if err != nil || kind != m3u8.MEDIA {
		t.Fatalf("playlist: %v (kind %v)", err, kind)
	}
	mp := pl.(*m3u8.MediaPlaylist)
	if !mp.Closed || mp.MediaType != m3u8.VOD || mp.TargetDuration != 2 {
		t.Errorf("playlist closed=%v type=%v target=%v, want an ended VOD playlist with target 2", mp.Closed, mp.MediaType, mp.TargetDuration)
	}
	wantDur := []float64{2, 2, 2, 2, 0.5}
	for i, seg := range mp.Segments[:mp.Count()] {
		if seg.URI != fmt.Sprintf("%d.ts", i) || math.Abs(seg.Duration-wantDur[i]) > 0.001 {
			t.Errorf("segment %d: %s %.3f s, want %d.ts %.1f s", i, seg.URI, seg.Duration, i, wantDur[i])
		}
		path := filepath.Join(media, seg.URI)
		first := testmedia.FFprobe(t, "-select_streams", "v", "-read_intervals", "%+#1", "-show_entries", "frame=key_frame,pict_type", path)
		if len(first.Frames) != 1 || first.Frames[0].KeyFrame != 1 {
			t.Errorf("segment %s does not start on a keyframe: %+v", seg.URI, first.Frames)
		}
		if d := testmedia.FFprobe(t, "-show_entries", "format=duration", path).Duration(t); math.Abs(d-wantDur[i]) > 0.1 {
			t.Errorf("segment %s lasts %.3f s by ffprobe, playlist says %.1f", seg.URI, d, wantDur[i])
		}
	}
	whole := testmedia.FFprobe(t, "-show_entries", "format=duration:stream=codec_name,width,height,sample_rate,channels",
		filepath.Join(dir, "media", "hls", "multivariant.m3u8"))
	if d := whole.Duration(t); math.Abs(d-8.5) > 0.15 {
		t.Errorf("recording lasts %.3f s, want 8.5", d)
	}
	var names []string
	for _, s := range whole.Streams {
		names = append(names, s.CodecName)
		if s.CodecName == "h264" && (s.Width != 320 || s.Height != 180) {
			t.Errorf("video %dx%d, want 320x180", s.Width, s.Height)
		}
		if s.CodecName == "aac" && (s.SampleRate != "48000" || s.Channels != 2) {
			t.Errorf("audio %s Hz %d channels, want 48000 stereo", s.SampleRate, s.Channels)
		}
	}
	if strings.Join(names, ",") != "h264,aac" {
		t.Errorf("streams %v, want h264,aac", names)
	}
	master, err := os.ReadFile(filepath.Join(dir, "media", "hls", "multivariant.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	// libx264 veryfast at 320x180: High profile (0x64), level 1.3 (0x0d) for 500 kbps.
	for _, want := range []string{"RESOLUTION=320x180", "BANDWIDTH=700000", `CODECS="avc1.64000d,mp4a.40.2"`, "180p30-TestRendition/playlist.m3u8"} {
		if !strings.Contains(string(master), want) {
			t.Errorf("multivariant playlist lacks %q:\n%s", want, master)
		}
	}
	var ended struct {
		Version   string `json:"version"`
		StageARN  string `json:"stage_arn"`
		Status    string `json:"recording_status"`
		StartedAt string `json:"recording_started_at"`
		EndedAt   string `json:"recording_ended_at"`
		Media     struct {
			HLS struct {
				Path       string `json:"path"`
				Playlist   string `json:"playlist"`
				DurationMS int64  `json:"duration_ms"`
				Renditions []struct {
					Path   string `json:"path"`
					Width  int    `json:"resolution_width"`
					Height int    `json:"resolution_height"`
				} `json:"renditions"`
			} `json:"hls"`
		} `json:"media"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "events", "recording-ended.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ended); err != nil {
		t.Fatal(err)
	}
	h := ended.Media.HLS
	if ended.Version != "v1" || ended.Status != "RECORDING_ENDED" || !strings.HasSuffix(ended.StageARN, "stage/abcdABCDefgh") ||
		ended.StartedAt == "" || ended.EndedAt == "" || h.Path != "media/hls" || h.Playlist != "multivariant.m3u8" ||
		h.DurationMS < 8400 || h.DurationMS > 8600 || len(h.Renditions) != 1 || h.Renditions[0].Path != "180p30-TestRendition" || h.Renditions[0].Width != 320 {
		t.Errorf("recording-ended.json:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "events", "recording-started.json")); err != nil {
		t.Error(err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(media, "*.part"))
	tmps, _ := filepath.Glob(filepath.Join(media, "*.tmp"))
	if len(leftovers)+len(tmps) > 0 {
		t.Errorf("partial files left behind: %v %v", leftovers, tmps)
	}
}

// TestFailedRecordingSaysSo ends a recording whose writes failed: the event
// object is recording-failed.json with the cause.
func TestFailedRecordingSaysSo(t *testing.T) {
	dir := t.TempDir()
	m := testmedia.New(t, testmedia.Options{Seconds: 1, NoAudio: true})
	rec, err := New(Config{Dir: dir, Rendition: "r", Video: Stream{Params: m.Video, TimeBase: m.VideoTimeBase}})
	if err != nil {
		t.Fatal(err)
	}
	m.Run(t, func(p *astiav.Packet, stream int) { _ = rec.Write(context.Background(), p, 1) }, nil) // audio to a video-only recording
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "events", "recording-failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"RECORDING_ENDED_WITH_FAILURE"`) || !strings.Contains(string(b), "audio packet for a video-only recording") {
		t.Errorf("recording-failed.json:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "events", "recording-ended.json")); err == nil {
		t.Error("a failed recording also wrote recording-ended.json")
	}
}

func TestRecorderRejectsBadConfig(t *testing.T) {
	vp := astiav.AllocCodecParameters()
	defer vp.Free()
	vp.SetMediaType(astiav.MediaTypeVideo)
	for name, cfg := range map[string]Config{
		"segment 1 s":  {Dir: t.TempDir(), Rendition: "r", SegmentSeconds: 1, Video: Stream{Params: vp}},
		"segment 11 s": {Dir: t.TempDir(), Rendition: "r", SegmentSeconds: 11, Video: Stream{Params: vp}},
		"no video":     {Dir: t.TempDir(), Rendition: "r"},
		"no rendition": {Dir: t.TempDir(), Video: Stream{Params: vp}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
