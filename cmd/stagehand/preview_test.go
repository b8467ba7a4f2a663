package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPreviewDrawsLayout runs the command as a user would and checks the
// PNG's pixels: the featured participant's colour in the featured slot, the
// background in the gap, and the table printed on stdout.
func TestPreviewDrawsLayout(t *testing.T) {
	cfg := writeFile(t, "layout.json", `{"grid":{"featuredParticipantAttribute":"featured","gridGap":10}}`)
	out := filepath.Join(t.TempDir(), "preview.png")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"layout", "preview", "--config", cfg, "--width", "1280", "--height", "720",
		"--participants", "3", "--attr", "2:featured=true", "--background", "#102030", "--out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("preview: %v\n%s", err, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 720 {
		t.Fatalf("image %v, want 1280x720", b)
	}
	// Featured slot: two thirds of (1280 - gap) = 846 px wide, P2's orange
	// (#ff7f0e) in its upper part, away from the label.
	r, g, b, _ := img.At(400, 200).RGBA()
	if r>>8 < 230 || g>>8 < 110 || g>>8 > 145 || b>>8 > 40 {
		t.Errorf("featured slot at (400,200) is %d,%d,%d, want P2's orange", r>>8, g>>8, b>>8)
	}
	// The gap between the featured slot and the other tiles is the background.
	r, g, b, _ = img.At(851, 300).RGBA()
	if d := int(r>>8) - 0x10 + int(g>>8) - 0x20 + int(b>>8) - 0x30; d < -6 || d > 6 {
		t.Errorf("gap at (851,300) is %d,%d,%d, want the background #102030", r>>8, g>>8, b>>8)
	}
	table := stdout.String()
	for _, want := range []string{"P2           featured  846x720+0+0", "P1           grid", "P3           grid", "wrote " + out} {
		if !strings.Contains(table, want) {
			t.Errorf("stdout lacks %q:\n%s", want, table)
		}
	}
}

func TestPreviewRejectsBadInput(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"misspelt knob", []string{"--config", "CONFIG:{\"grid\":{\"gap\":4}}"}, `unknown field "gap"`},
		{"unknown enum", []string{"--config", "CONFIG:{\"pip\":{\"pipPosition\":\"CENTER\"}}"}, "layout.pip.pipPosition"},
		{"negative gap", []string{"--config", "CONFIG:{\"grid\":{\"gridGap\":-2}}"}, "layout.grid.gridGap: -2 is negative"},
		{"odd canvas", []string{"--width", "1281"}, "canvas: 1281x1080"},
		{"participant out of range", []string{"--participants", "2", "--attr", "3:featured=true"}, "participant number must be 1..2"},
		{"bad video size", []string{"--video", "big"}, "want WxH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"layout", "preview", "--out", filepath.Join(t.TempDir(), "p.png")}
			for _, a := range tc.args {
				if body, ok := strings.CutPrefix(a, "CONFIG:"); ok {
					a = writeFile(t, "layout.json", body)
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

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"dance"}, &stdout, &stderr); err == nil || !strings.Contains(stderr.String(), "Usage:") {
		t.Fatalf("err %v, stderr %q: want an error and the usage", err, stderr.String())
	}
}
