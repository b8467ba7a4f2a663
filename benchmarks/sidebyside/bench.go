package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
)

// The contenders of every pair, and the codec floor's two halves.
const (
	cStagehand = "stagehand"
	cFFmpeg    = "ffmpeg"             // the CLI's defaults: the scale filter's bicubic
	cFFmpegBL  = "ffmpeg-same-scaler" // the CLI with Stagehand's scaler (area): like for like
	cDecode    = "decode"
	cEncode    = "encode"
	cBaseline  = "baseline" // another stagehand binary, when one is given
	// cTopLayer is Stagehand reading the top layer in a layer-aware
	// composite: the composition without layer selection.
	cTopLayer = "stagehand-top-layer"
)

// renditionName is the composite recording's folder, as compose names it.
var renditionName = fmt.Sprintf("%dp%d", canvasH, framerate)

// contenders are the runs of every pair of c.
func (s settings) contenders(c *composite) []string {
	cs := []string{cStagehand, cFFmpeg, cFFmpegBL, cDecode, cEncode}
	if c.layered {
		cs = append(cs, cTopLayer)
	}
	if s.baseline != "" {
		cs = append(cs, cBaseline)
	}
	return cs
}

// composite is one layout's runs. In a layer-aware one, Stagehand (and the
// decoding floor) read each participant's 640x360 layer, what a worker
// picks for tiles of that size; the FFmpeg CLI and cTopLayer read the
// 720p streams.
type composite struct {
	n       int
	layered bool
	inputs  []string // what Stagehand reads
	top     []string // the 720p streams
	tiles   []layout.Tile
	samples map[string][]sample
	// source is a finished composite in HLS: the raw frames of the encoding floor.
	source string
}

func bench(ctx context.Context, s settings) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	encPath := filepath.Join(s.dir, "encoder.json")
	enc, _ := json.Marshal(map[string]any{"video": map[string]int{"width": canvasW, "height": canvasH,
		"framerate": framerate, "bitrate": videoBitrate}})
	if err := os.WriteFile(encPath, enc, 0o644); err != nil {
		return err
	}
	if s.printOnly {
		return printCommands(s, encPath)
	}
	printHeader(ctx, s)
	var done []*composite
	for _, n := range s.layouts {
		c, err := runComposite(ctx, s, n, false, encPath)
		if err != nil {
			return fmt.Errorf("%d-up: %w", n, err)
		}
		done = append(done, c)
		printPairs(s, c)
	}
	for _, n := range s.layered {
		c, err := runComposite(ctx, s, n, true, encPath)
		if err != nil {
			return fmt.Errorf("%d-up layer-aware: %w", n, err)
		}
		done = append(done, c)
		printPairs(s, c)
	}
	var conc []sample
	if s.concurrent > 0 {
		var err error
		if conc, err = runConcurrent(ctx, s, encPath); err != nil {
			return fmt.Errorf("concurrent: %w", err)
		}
	}
	printSummary(s, done, conc)
	return nil
}

func runComposite(ctx context.Context, s settings, n int, layered bool, encPath string) (*composite, error) {
	top, err := ensureInputs(ctx, s.dir, n, s.seconds, topLayer)
	if err != nil {
		return nil, err
	}
	in := top
	if layered {
		if in, err = ensureInputs(ctx, s.dir, n, s.seconds, mediumLayer); err != nil {
			return nil, err
		}
	}
	ts, err := tiles(n)
	if err != nil {
		return nil, err
	}
	c := &composite{n: n, layered: layered, inputs: in, top: top, tiles: ts, samples: map[string][]sample{}}
	// A first, unmeasured run warms the page cache and leaves the composite
	// whose raw frames the encoding floor encodes.
	warm := outDir(s, c.label(), "source")
	if _, err := run(ctx, nil, s.stagehand, stagehandArgs(in, encPath, warm)...); err != nil {
		return nil, err
	}
	c.source = filepath.Join(warm, filepath.FromSlash(ivsrec.PlaylistPath(renditionName)))
	fmt.Fprintf(os.Stderr, "%s: %d pairs of %d s", c.label(), s.pairs, s.seconds)
	for p := 0; p < s.pairs; p++ {
		// Rotate the order so that no contender always runs first or last.
		contenders := s.contenders(c)
		for k := range contenders {
			name := contenders[(p+k)%len(contenders)]
			smp, err := c.runOne(ctx, s, name, encPath)
			if err != nil {
				return nil, err
			}
			c.samples[name] = append(c.samples[name], smp)
		}
		fmt.Fprint(os.Stderr, ".")
	}
	fmt.Fprintln(os.Stderr)
	return c, nil
}

// label names the composite: "9-up", "9-up-layered".
func (c *composite) label() string {
	if c.layered {
		return fmt.Sprintf("%d-up-layered", c.n)
	}
	return fmt.Sprintf("%d-up", c.n)
}

func (c *composite) runOne(ctx context.Context, s settings, name, encPath string) (sample, error) {
	dir := outDir(s, c.label(), name)
	switch name {
	case cStagehand:
		return run(ctx, nil, s.stagehand, stagehandArgs(c.inputs, encPath, dir)...)
	case cTopLayer:
		return run(ctx, nil, s.stagehand, stagehandArgs(c.top, encPath, dir)...)
	case cBaseline:
		return run(ctx, nil, s.baseline, stagehandArgs(c.inputs, encPath, dir)...)
	case cFFmpeg, cFFmpegBL:
		scaler := ""
		if name == cFFmpegBL {
			scaler = stagehandScaler
		}
		return run(ctx, nil, "ffmpeg", ffmpegComposite(c.top, c.tiles, scaler, dir)...)
	case cDecode:
		return run(ctx, nil, "ffmpeg", ffmpegDecode(c.inputs)...)
	default:
		return runPiped(ctx, append([]string{"ffmpeg"}, ffmpegRaw(c.source)...), append([]string{"ffmpeg"},
			ffmpegEncode()...))
	}
}

func stagehandArgs(inputs []string, encPath, dir string) []string {
	args := []string{"compose", "--quiet", "--encoder", encPath, "--preset", preset, "--segment",
		fmt.Sprint(segmentSeconds), "--hls-dir", dir}
	for _, in := range inputs {
		args = append(args, "--input", in)
	}
	return args
}

// outDir is an empty output directory for one contender.
func outDir(s settings, composite, name string) string {
	dir := filepath.Join(s.dir, "out", composite+"-"+name)
	_ = os.RemoveAll(dir)
	_ = os.MkdirAll(dir, 0o755)
	return dir
}

// runConcurrent runs s.concurrent 4-up composites at once, as fast as they
// go: each one's speed is what the machine sustains with all of them running.
func runConcurrent(ctx context.Context, s settings, encPath string) ([]sample, error) {
	in, err := ensureInputs(ctx, s.dir, 4, s.seconds, topLayer)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "%d concurrent 4-up composites\n", s.concurrent)
	cmds := make([][]string, s.concurrent)
	for i := range cmds {
		dir := outDir(s, "4-up", fmt.Sprintf("concurrent-%d", i))
		cmds[i] = append([]string{s.stagehand}, stagehandArgs(in, encPath, dir)...)
	}
	return concurrently(ctx, cmds)
}

func printHeader(ctx context.Context, s settings) {
	fmt.Printf("# Stagehand vs the FFmpeg CLI, side by side\n\n")
	fmt.Printf("machine: %s, %d CPUs; %s; libx264 threads auto, sliced (Stagehand's encoder and every FFmpeg run)\n",
		cpuModel(), numCPU(), ffmpegVersion(ctx))
	fmt.Printf("composite: %dx%dp%d grid from 1280x720p30 VP8/Opus inputs of %d s, %s, %d kbps, keyint %d, AAC %d kbps, "+
		"to HLS\n",
		canvasW, canvasH, framerate, s.seconds, preset, videoBitrate/1000, keyint, audioBitrate/1000)
	fmt.Printf("cost: CPU-s (user+sys of the process, all threads) per second of output; %d alternating pairs, "+
		"median\n\n", s.pairs)
}

// cpuModel names the processor from /proc/cpuinfo (Linux).
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// printCommands shows what every contender runs, shell-quoted, for each layout.
func printCommands(s settings, encPath string) error {
	for _, n := range s.layouts {
		in := make([]string, n)
		for i := range in {
			in[i] = filepath.Join(s.dir, fmt.Sprintf("inputs-%ds", s.seconds), fmt.Sprintf("in%d.webm", i+1))
		}
		ts, err := tiles(n)
		if err != nil {
			return err
		}
		fmt.Printf("# %d-up\n", n)
		fmt.Println(shell(append([]string{s.stagehand}, stagehandArgs(in, encPath, "OUT")...)))
		fmt.Println(shell(append([]string{"ffmpeg"}, ffmpegComposite(in, ts, "", "OUT")...)))
		fmt.Println(shell(append([]string{"ffmpeg"}, ffmpegComposite(in, ts, stagehandScaler, "OUT")...)))
		fmt.Println(shell(append([]string{"ffmpeg"}, ffmpegDecode(in)...)))
		raw := shell(append([]string{"ffmpeg"}, ffmpegRaw("OUT/"+ivsrec.PlaylistPath(renditionName))...))
		fmt.Println(raw + " | " + shell(append([]string{"ffmpeg"}, ffmpegEncode()...)))
	}
	return nil
}

func shell(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " |;[]:=*$'\"()<>&") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
