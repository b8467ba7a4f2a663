package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestComposeCommand runs `stagehand compose` as a user would on a small
// VP8/Opus file and checks its report and the recording it leaves.
func TestComposeCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.webm")
	if b, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=2",
		"-f", "lavfi", "-i", "sine=d=2:sample_rate=48000", "-c:v", "libvpx", "-c:a", "libopus", "-shortest", in).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	enc := writeFile(t, "enc.json", `{"video":{"width":640,"height":360,"framerate":30,"bitrate":800000}}`)
	out := filepath.Join(dir, "hls")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"compose", "--input", in, "--input", in, "--encoder", enc, "--segment", "2",
		"--hls-dir", out, "--stage-arn", "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCDefgh"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("compose: %v\n%s", err, stderr.String())
	}
	// 2 s of input: 60 frames, or 61 when its audio runs a frame longer.
	if !strings.Contains(stdout.String(), "time=2.0s") || !strings.Contains(stdout.String(), "hls=STOPPED") {
		t.Errorf("report %q: want 2.0 s and the hls destination STOPPED", stdout.String())
	}
	if !strings.Contains(stderr.String(), "frames=30 fps=") || !strings.Contains(stderr.String(), "time=1.0s") {
		t.Errorf("no progress line after the first second:\n%s", stderr.String())
	}
	for _, f := range []string{"media/hls/multivariant.m3u8", "media/hls/360p30/playlist.m3u8", "media/hls/360p30/0.ts", "events/recording-ended.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestComposeRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad s3 url", []string{"--input", "x.webm", "--s3", "http://bucket/prefix"}, "want s3://bucket/prefix"},
		{"unknown encoder member", []string{"--input", "x.webm", "--encoder", "ENC:{\"video\":{\"widht\":640}}"}, `unknown field "widht"`},
		{"encoder too large", []string{"--input", "x.webm", "--encoder", "ENC:{\"video\":{\"width\":1920,\"height\":1200}}"}, "at most 2073600"},
		{"no destination", []string{"--input", "x.webm"}, "no destination"},
		{"missing input", []string{"--input", "nope.webm", "--hls-dir", "DIR"}, "nope.webm"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"compose"}
			for _, a := range tc.args {
				if body, ok := strings.CutPrefix(a, "ENC:"); ok {
					a = writeFile(t, "enc.json", body)
				}
				if a == "DIR" {
					a = t.TempDir()
				}
				args = append(args, a)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}
