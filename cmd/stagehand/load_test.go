package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/loadtest"
)

func TestParseLoadFlags(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIA")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	f, err := parseLoadFlags([]string{"--endpoint-url", "http://127.0.0.1:8690", "--publishers", "24",
		"--video-bitrate", "2.5M", "--video-size", "640x360", "--ramp-step", "50", "--max-loss", "2%"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c := f.cfg
	if c.VideoBitrate != 2_500_000 || c.Width != 640 || c.Height != 360 || c.Ramp.MaxLoss != 0.02 ||
		c.Subscribers != 0 || c.Region != "us-east-1" || c.AccessKeyID != "AKIA" {
		t.Errorf("config = %+v", c)
	}
	for _, bad := range [][]string{
		{},
		{"--endpoint-url", "http://x:1", "--publishers", "13", "--stages", "1"},
		{"--endpoint-url", "http://x:1", "--video-codec", "av1"},
		{"--endpoint-url", "http://x:1", "--video-bitrate", "fast"},
		{"--endpoint-url", "http://x:1", "--max-loss", "120%"},
		{"--endpoint-url", "http://x:1", "--video-size", "big"},
		{"--endpoint-url", "http://x:1", "extra"},
	} {
		if _, err := parseLoadFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestLoadAgainstServe: `stagehand load --json` against `stagehand serve`
// reports its subscribers and the server's CPU from /metrics.
func TestLoadAgainstServe(t *testing.T) {
	url, _ := startServe(t, "--dev", "--no-worker", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0",
		"--nats-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	t.Setenv("AWS_ACCESS_KEY_ID", devAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", devSecretAccessKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"load", "--endpoint-url", url, "--publishers", "1", "--subscribers", "2",
		"--duration", "2s", "--video-size", "320x180", "--video-bitrate", "300k", "--ice-ip", "127.0.0.1", "--json"},
		&stdout, &stderr)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, stderr.String())
	}
	var rep loadtest.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if rep.Subscribers != 2 || len(rep.Failures) != 0 || rep.Loss.Lost != 0 {
		t.Errorf("report: %s", stdout.String())
	}
	if rep.Server.Error != "" || rep.Server.CPUCores <= 0 || rep.Server.RSSMB <= 0 {
		t.Errorf("server = %+v", rep.Server)
	}
	if !strings.Contains(stderr.String(), "subscribers 2/2") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
}
