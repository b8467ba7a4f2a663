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

// source is one encoding of the participants' pictures.
type source struct {
	w, h    int
	bitrate string
	dir     string // the inputs' folder name under the bench directory
}

var (
	// topLayer is what every composite but the layer-aware one reads.
	topLayer = source{inputW, inputH, inputBitrate, "inputs"}
	// mediumLayer is a simulcast publisher's middle layer (half the size,
	// a third of the bitrate, as `stagehand publish --simulcast` and
	// browsers send it): what a layer-aware worker decodes for a 9-up
	// 1080p tile (about 636x358).
	mediumLayer = source{inputW / 2, inputH / 2, "700k", "inputs-360p"}
)

// ensureInputs returns n input files of the given length, generating the
// missing ones with lavfi sources: testsrc2 moves everywhere (a scrolling
// gradient, a moving box and a running counter), and each input gets its own
// hue and tone so that no two tiles are the same picture.
func ensureInputs(ctx context.Context, dir string, n, seconds int, src source) ([]string, error) {
	dir = filepath.Join(dir, fmt.Sprintf("%s-%ds", src.dir, seconds))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	paths := make([]string, n)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("in%d.webm", i+1))
		if _, err := os.Stat(paths[i]); err == nil {
			continue
		}
		if err := generateInput(ctx, paths[i], i, seconds, src); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func generateInput(ctx context.Context, path string, i, seconds int, src source) error {
	d := strconv.Itoa(seconds)
	video := fmt.Sprintf("testsrc2=s=%dx%d:r=30:d=%s,hue=h=%d", src.w, src.h, d, i*40)
	audio := fmt.Sprintf("sine=f=%d:d=%s:sample_rate=48000", 300+i*100, d)
	tmp := path + ".part.webm"
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", src.bitrate,
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
