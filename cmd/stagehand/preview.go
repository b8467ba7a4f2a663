package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/layout"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runPreview(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stagehand layout preview", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "",
		"layout JSON file: an IVS LayoutConfiguration ({\"grid\":{…}} or {\"pip\":{…}}), or a StartComposition body with a "+
			"\"layout\" member; empty for the default grid")
	width := fs.Int("width", 1920, "canvas width in pixels (even)")
	height := fs.Int("height", 1080, "canvas height in pixels (even)")
	count := fs.Int("participants", 4, "number of participants, in arrival order P1, P2, …")
	out := fs.String("out", "preview.png", "PNG file to write")
	background := fs.String("background", "#000000", "background colour")
	var attrs, stopped, videos listFlag
	fs.Var(&attrs, "attr",
		"participant attribute `N:key=value` (1-based participant number; repeatable), e.g. 2:featured=true")
	fs.Var(&stopped, "stopped", "participant number `N` whose video is stopped (repeatable)")
	fs.Var(&videos, "video", "video size `WxH` for every participant, or N:WxH for one (repeatable); default 1280x720")
	const usage = "Usage: stagehand layout preview [flags]\n\n" +
		"Draws a layout with labelled coloured tiles, as a composition would render it."
	if err := parseFlags(fs, stderr, usage, args); err != nil {
		return err
	}
	cfg, err := readLayoutConfig(*configPath)
	if err != nil {
		return err
	}
	bg, err := compositor.ParseColor(*background)
	if err != nil {
		return fmt.Errorf("--background: %w", err)
	}
	ps, err := previewParticipants(*count, attrs, stopped, videos)
	if err != nil {
		return err
	}
	img, geometry, err := compositor.Preview(compositor.Config{
		Canvas: layout.Size{W: *width, H: *height}, Layout: cfg, Background: bg,
	}, ps)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("encode png: %w", err)
	}
	if dir := filepath.Dir(*out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	printGeometry(stdout, geometry)
	fmt.Fprintf(stdout, "wrote %s (%dx%d)\n", *out, *width, *height)
	return nil
}

// readLayoutConfig reads a layout file strictly: an unknown member is an
// error, so a misspelt knob does not silently fall back to its default.
func readLayoutConfig(path string) (layout.Config, error) {
	if path == "" {
		return layout.Config{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return layout.Config{}, fmt.Errorf("read layout: %w", err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return layout.Config{}, fmt.Errorf("layout %s: %w", path, err)
	}
	if inner, ok := probe["layout"]; ok {
		data = inner
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg layout.Config
	if err := dec.Decode(&cfg); err != nil {
		return layout.Config{}, fmt.Errorf("layout %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return layout.Config{}, fmt.Errorf("layout %s: %w", path, err)
	}
	return cfg, nil
}

func previewParticipants(n int, attrs, stopped, videos []string) ([]compositor.PreviewParticipant, error) {
	if n < 0 {
		return nil, fmt.Errorf("--participants %d: must not be negative", n)
	}
	ps := make([]compositor.PreviewParticipant, n)
	for i := range ps {
		ps[i].ID = fmt.Sprintf("P%d", i+1)
		ps[i].Attributes = map[string]string{}
	}
	index := func(flagName, s string) (int, error) {
		k, err := strconv.Atoi(s)
		if err != nil || k < 1 || k > n {
			return 0, fmt.Errorf("--%s %q: participant number must be 1..%d", flagName, s, n)
		}
		return k - 1, nil
	}
	for _, a := range attrs {
		num, kv, ok := strings.Cut(a, ":")
		key, val, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 || key == "" {
			return nil, fmt.Errorf("--attr %q: want N:key=value", a)
		}
		k, err := index("attr", num)
		if err != nil {
			return nil, err
		}
		ps[k].Attributes[key] = val
	}
	for _, s := range stopped {
		k, err := index("stopped", s)
		if err != nil {
			return nil, err
		}
		ps[k].VideoStopped = true
	}
	for _, v := range videos {
		num, dims, one := strings.Cut(v, ":")
		if !one {
			dims = num
		}
		size, err := parseSize(dims)
		if err != nil {
			return nil, fmt.Errorf("--video %q: %w", v, err)
		}
		if !one {
			for i := range ps {
				ps[i].Video = size
			}
			continue
		}
		k, err := index("video", num)
		if err != nil {
			return nil, err
		}
		ps[k].Video = size
	}
	for i := range ps {
		var kv []string
		for k, v := range ps[i].Attributes {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		ps[i].Detail = strings.Join(kv, " ")
		if ps[i].VideoStopped {
			ps[i].Detail = strings.TrimSpace(ps[i].Detail + " stopped")
		}
	}
	return ps, nil
}

func parseSize(s string) (layout.Size, error) {
	ws, hs, ok := strings.Cut(s, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w < 2 || h < 2 || w > 8192 || h > 8192 {
		return layout.Size{}, errors.New("want WxH with sides 2..8192")
	}
	return layout.Size{W: w, H: h}, nil
}

func printGeometry(w io.Writer, g layout.Layout) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "participant\tslot\ttile\tpicture\tsource crop\tfill\tz")
	for _, t := range g.Tiles {
		crop := "-"
		if !t.Crop.Empty() {
			crop = rectString(t.Crop)
		}
		pic := rectString(t.Video)
		if t.Placeholder {
			pic = "placeholder"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", t.ID, t.Slot, rectString(t.Tile), pic, crop, t.Fill, t.Z)
	}
	tw.Flush()
	if len(g.Omitted) > 0 {
		fmt.Fprintf(w, "omitted (stopped video): %s\n", strings.Join(g.Omitted, ", "))
	}
	if len(g.Dropped) > 0 {
		fmt.Fprintf(w, "dropped (more than %d participants): %s\n", layout.MaxTiles, strings.Join(g.Dropped, ", "))
	}
}

func rectString(r layout.Rect) string { return fmt.Sprintf("%dx%d+%d+%d", r.W, r.H, r.X, r.Y) }
