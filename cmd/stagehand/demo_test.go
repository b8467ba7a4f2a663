package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeDemo: `serve --demo` (what `make run` starts) records a
// composition of two participants, and Ctrl-C closes the recording.
func TestServeDemo(t *testing.T) {
	url, stop, out := startServeOutput(t, "--dev", "--demo", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	re := regexp.MustCompile(`recording to (\S+playlist\.m3u8)`)
	var playlist string
	for deadline := time.Now().Add(30 * time.Second); playlist == ""; time.Sleep(100 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			playlist = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no demo recording announced:\n%s", out)
		}
	}
	time.Sleep(5 * time.Second)
	// An unsigned API request, refused and counted.
	if resp, err := http.Post(url+"/ListStages", "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
	}
	// The metrics of the worker, the API, the stage and the ingest, on the
	// API port.
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^stagehand_worker_compositions_running 1$`),
		regexp.MustCompile(`(?m)^stagehand_worker_frames_rendered_total [1-9]\d+`),
		regexp.MustCompile(`(?m)^stagehand_worker_render_seconds_count [1-9]`),
		regexp.MustCompile(`(?m)^stagehand_worker_destination_bytes_total\{composition="\w+",destination="\w+",state="ACTIVE"\} [1-9]`),
		regexp.MustCompile(`(?m)^stagehand_jobs_waiting 0$`),
		regexp.MustCompile(`(?m)^stagehand_api_requests_total\{code="MissingAuthenticationTokenException",operation="ListStages"\} 1$`),
		regexp.MustCompile(`(?m)^stagehand_api_requests_total\{code="OK",operation="StartComposition"\} 1$`),
		regexp.MustCompile(`(?m)^stagehand_stage_rooms 1$`),
		// alice and bob publish; the composition subscribes to each.
		regexp.MustCompile(`(?m)^stagehand_stage_participants\{state="publishing"\} 2$`),
		regexp.MustCompile(`(?m)^stagehand_stage_peers\{kind="subscribe"\} 2$`),
		regexp.MustCompile(`(?m)^stagehand_ingest_publishers 0$`),
	} {
		if !want.Match(body) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
	stop()
	if !strings.Contains(out.String(), "composition stopped, recording closed") {
		t.Errorf("no clean demo stop:\n%s", out)
	}
	b, err := os.ReadFile(playlist)
	if err != nil || !strings.Contains(string(b), "#EXT-X-ENDLIST") || strings.Count(string(b), "#EXTINF") < 2 {
		t.Errorf("demo playlist %s (%v):\n%s", playlist, err, b)
	}
	if w, h, dur := probePlaylist(t, playlist); w != 1280 || h != 720 || dur < 3 {
		t.Errorf("demo recording %dx%d %.1f s, want 1280x720 ≥ 3 s", w, h, dur)
	}
}

func probePlaylist(t *testing.T, path string) (w, h int, dur float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var r struct {
		Streams []struct{ Width, Height int } `json:"streams"`
		Format  struct{ Duration string }     `json:"format"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) == 0 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	dur, _ = strconv.ParseFloat(r.Format.Duration, 64)
	return r.Streams[0].Width, r.Streams[0].Height, dur
}
