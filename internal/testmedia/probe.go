package testmedia

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
)

// Probe is what ffprobe reports of a file.
type Probe struct {
	Streams []struct {
		CodecName  string `json:"codec_name"`
		FrameRate  string `json:"r_frame_rate"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Frames []struct {
		KeyFrame int    `json:"key_frame"`
		PictType string `json:"pict_type"`
	} `json:"frames"`
}

// FFprobe runs Debian's ffprobe with args and JSON output.
func FFprobe(t testing.TB, args ...string) Probe {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatalf("ffprobe not installed: run scripts/deps.sh (ffmpeg): %v", err)
	}
	out, err := exec.Command("ffprobe", append([]string{"-v", "error", "-of", "json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %v: %v", args, err)
	}
	var p Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	return p
}

// Duration is the container's duration in seconds.
func (p Probe) Duration(t testing.TB) float64 {
	t.Helper()
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("duration %q: %v", p.Format.Duration, err)
	}
	return d
}

// Codecs lists the streams' codec names in order.
func (p Probe) Codecs() []string {
	var names []string
	for _, s := range p.Streams {
		names = append(names, s.CodecName)
	}
	return names
}

// ProbeVideo reports the size of path's first video stream and the
// container's duration in seconds, 0 when ffprobe gives none (a live
// playlist). It fails t when there is no video stream.
func ProbeVideo(t testing.TB, path string) (w, h int, dur float64) {
	t.Helper()
	p := FFprobe(t, "-select_streams", "v:0", "-show_entries", "stream=width,height:format=duration", path)
	if len(p.Streams) == 0 {
		t.Fatalf("ffprobe %s: no video stream", path)
	}
	dur, _ = strconv.ParseFloat(p.Format.Duration, 64)
	return p.Streams[0].Width, p.Streams[0].Height, dur
}
