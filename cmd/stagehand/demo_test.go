package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
)

// TestServeDemo: `serve --demo` (what `make run` starts) records a
// composition of two participants, and Ctrl-C closes the recording.
func TestServeDemo(t *testing.T) {
	url, stop, out := startServeOutput(t, "--dev", "--demo", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	playlist := demoPlaylist(t, out)
	testkit.WaitFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		b, err := os.ReadFile(playlist)
		if n := strings.Count(string(b), "#EXTINF"); err != nil || n < 2 {
			return fmt.Errorf("the demo recording has %d segments (%w)", n, err)
		}
		return nil
	})
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
	checkDemoConsole(t, out)
	stop()
	if !strings.Contains(out.String(), "composition stopped, recording closed") {
		t.Errorf("no clean demo stop:\n%s", out)
	}
	b, err := os.ReadFile(playlist)
	if err != nil || !strings.Contains(string(b), "#EXT-X-ENDLIST") || strings.Count(string(b), "#EXTINF") < 2 {
		t.Errorf("demo playlist %s (%v):\n%s", playlist, err, b)
	}
	if w, h, dur := testmedia.ProbeVideo(t, playlist); w != 1280 || h != 720 || dur < 3 {
		t.Errorf("demo recording %dx%d %.1f s, want 1280x720 ≥ 3 s", w, h, dur)
	}
}

// TestServeDemoHTTPS: `serve --dev --tls --demo` serves the API and the
// stage over HTTPS with a self-signed certificate, which the demo's
// participants and the embedded worker trust: the composition records.
func TestServeDemoHTTPS(t *testing.T) {
	_, stop, out := startServeOutput(t, "--dev", "--tls", "--demo", "--api-addr", "127.0.0.1:0",
		"--stage-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	playlist := demoPlaylist(t, out)
	testkit.WaitFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		b, err := os.ReadFile(playlist)
		if n := strings.Count(string(b), "#EXTINF"); err != nil || n < 2 {
			return fmt.Errorf("the demo recording over HTTPS has %d segments (%w)", n, err)
		}
		return nil
	})
	stop()
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "certificate signed by unknown authority") {
			t.Errorf("a client of serve did not trust its certificate: %s", line)
		}
	}
}

// demoPlaylist waits for serve to announce the demo recording's playlist.
func demoPlaylist(t *testing.T, out *testkit.SyncBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`recording to (\S+playlist\.m3u8)`)
	var playlist string
	testkit.WaitFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		m := re.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("no demo recording announced:\n%s", out)
		}
		playlist = m[1]
		return nil
	})
	return playlist
}

// checkDemoConsole signs in to the console serve printed, with the demo
// credentials, and finds the demo composition ACTIVE there with a
// playable recording, as a newcomer after `make run` would.
func checkDemoConsole(t *testing.T, out *testkit.SyncBuffer) {
	t.Helper()
	m := regexp.MustCompile(`console at (\S+)/console/`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("serve printed no console URL:\n%s", out)
	}
	base := m[1]
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	call := func(method, path, body string, v any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-Stagehand-Console", "1")
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("console %s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("console %s %s: %v", method, path, err)
			}
		}
	}
	call("POST", "/console/api/session", fmt.Sprintf(`{"accessKeyId":%q,"secretAccessKey":%q}`, devAccessKeyID,
		devSecretAccessKey), nil)
	var list struct {
		Compositions []struct{ Arn, State string } `json:"compositions"`
	}
	call("POST", "/console/api/op/ListCompositions", "{}", &list)
	if len(list.Compositions) != 1 || list.Compositions[0].State != "ACTIVE" {
		t.Fatalf("the console lists %+v, want the demo composition ACTIVE", list.Compositions)
	}
	var recs struct {
		Recordings []struct{ Playlist string } `json:"recordings"`
	}
	call("GET", "/console/api/recordings?arn="+url.QueryEscape(list.Compositions[0].Arn), "", &recs)
	if len(recs.Recordings) != 1 || recs.Recordings[0].Playlist == "" {
		t.Fatalf("the console's recordings %+v, want the demo's playlist", recs)
	}
	call("GET", recs.Recordings[0].Playlist, "", nil)
}
