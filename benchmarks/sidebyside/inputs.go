package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// The participants: 720p30 VP8 with Opus, as a browser publishes them.
const (
	inputW, inputH = 1280, 720
	inputBitrate   = "2M"
)

// ensureInputs returns n input files of the given length, generating the
// missing ones with lavfi sources: testsrc2 moves everywhere (a scrolling
// gradient, a moving box and a running counter), and each input gets its own
// hue and tone so that no two tiles are the same picture.
func ensureInputs(ctx context.Context, dir string, n, seconds int) ([]string, error) {
	dir = filepath.Join(dir, fmt.Sprintf("inputs-%ds", seconds))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	paths := make([]string, n)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("in%d.webm", i+1))
		if _, err := os.Stat(paths[i]); err == nil {
			continue
		}
		if err := generateInput(ctx, paths[i], i, seconds); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func generateInput(ctx context.Context, path string, i, seconds int) error {
	d := strconv.Itoa(seconds)
	video := fmt.Sprintf("testsrc2=s=%dx%d:r=30:d=%s,hue=h=%d", inputW, inputH, d, i*40)
	audio := fmt.Sprintf("sine=f=%d:d=%s:sample_rate=48000", 300+i*100, d)
	tmp := path + ".part.webm"
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", inputBitrate,
		"-c:a", "libopus", "-shortest", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("generate %s: %w: %s", path, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("generate %s: %w", path, err)
	}
	return nil
}
