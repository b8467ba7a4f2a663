package main

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
)

// Targets of issue 18: at equal codec work (4-up and 9-up), and for a
// layer-aware composite against the FFmpeg CLI decoding every full stream.
const (
	targetVsFFmpeg        = 0.92
	targetVsFloor         = 1.05
	targetLayeredVsFFmpeg = 0.6
)

func numCPU() int { return runtime.NumCPU() }

func ffmpegVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "ffmpeg", "-version").Output()
	if err != nil {
		return "ffmpeg unknown"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if f := strings.Fields(first); len(f) >= 3 {
		return "FFmpeg " + f[2]
	}
	return first
}

// perSecond is CPU-seconds per second of output.
func (c *composite) perSecond(s settings, name string, i int) float64 {
	return c.samples[name][i].cpu.Seconds() / float64(s.seconds)
}

func (c *composite) floor(s settings, i int) float64 {
	return c.perSecond(s, cDecode, i) + c.perSecond(s, cEncode, i)
}

// column is one figure per pair.
func (c *composite) column(s settings, f func(i int) float64) []float64 {
	out := make([]float64, s.pairs)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func (c *composite) cpu(s settings, name string) []float64 {
	return c.column(s, func(i int) float64 { return c.perSecond(s, name, i) })
}

func (c *composite) ratio(s settings, name string) []float64 {
	return c.column(s, func(i int) float64 { return c.perSecond(s, cStagehand, i) / c.perSecond(s, name, i) })
}

func (c *composite) floorRatio(s settings) []float64 {
	return c.column(s, func(i int) float64 { return c.perSecond(s, cStagehand, i) / c.floor(s, i) })
}

func (c *composite) wall(s settings, name string) []float64 {
	return c.column(s, func(i int) float64 { return c.samples[name][i].wall.Seconds() })
}

func (c *composite) rss(s settings, name string) []float64 {
	return c.column(s, func(i int) float64 { return float64(c.samples[name][i].rssKB) / 1024 })
}

func printPairs(s settings, c *composite) {
	fmt.Printf("## %s, every pair\n\n", c.label())
	fmt.Println("| pair | Stagehand CPU-s/s | wall s | RSS MB | FFmpeg CLI CPU-s/s | wall s | RSS MB | ratio | FFmpeg " +
		"CLI, Stagehand's scaler, CPU-s/s | ratio | floor CPU-s/s | ratio |")
	fmt.Println("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for i := 0; i < s.pairs; i++ {
		sh, ff := c.samples[cStagehand][i], c.samples[cFFmpeg][i]
		fmt.Printf("| %d | %.3f | %.2f | %.0f | %.3f | %.2f | %.0f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", i+1,
			c.perSecond(s, cStagehand, i), sh.wall.Seconds(), float64(sh.rssKB)/1024,
			c.perSecond(s, cFFmpeg, i), ff.wall.Seconds(), float64(ff.rssKB)/1024,
			c.perSecond(s, cStagehand, i)/c.perSecond(s, cFFmpeg, i),
			c.perSecond(s, cFFmpegBL, i), c.perSecond(s, cStagehand, i)/c.perSecond(s, cFFmpegBL, i),
			c.floor(s, i), c.perSecond(s, cStagehand, i)/c.floor(s, i))
	}
	fmt.Println()
}

func printSummary(s settings, cs []*composite, conc []sample) {
	fmt.Printf("## Summary (medians of %d pairs)\n\n", s.pairs)
	fmt.Println("| composite | Stagehand CPU-s/s | FFmpeg CLI CPU-s/s | Stagehand/FFmpeg (target ≤ 0.92) | FFmpeg CLI, " +
		"Stagehand's scaler | Stagehand/that | codec floor (decode + encode) | Stagehand/floor (target ≤ 1.05) | wall s " +
		"Stagehand / FFmpeg | peak RSS MB Stagehand / FFmpeg |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range cs {
		vsFF, vsFloor := median(c.ratio(s, cFFmpeg)), median(c.floorRatio(s))
		name, target := fmt.Sprintf("%d-up", c.n), targetVsFFmpeg
		if c.layered {
			name, target = fmt.Sprintf("%d-up layer-aware", c.n), targetLayeredVsFFmpeg
		}
		fmt.Printf("| 1080p30 %s | %.3f | %.3f | %.3f %s | %.3f | %.3f | %.3f + %.3f = %.3f | %.3f %s | %.2f / %.2f | "+
			"%.0f / %.0f |\n", name,
			median(c.cpu(s, cStagehand)), median(c.cpu(s, cFFmpeg)), vsFF, mark(vsFF <= target),
			median(c.cpu(s, cFFmpegBL)), median(c.ratio(s, cFFmpegBL)),
			median(c.cpu(s, cDecode)), median(c.cpu(s, cEncode)),
			median(c.column(s, func(i int) float64 { return c.floor(s, i) })),
			vsFloor, mark(vsFloor <= targetVsFloor),
			median(c.wall(s, cStagehand)), median(c.wall(s, cFFmpeg)),
			median(c.rss(s, cStagehand)), median(c.rss(s, cFFmpeg)))
	}
	fmt.Println()
	printLayered(s, cs)
	if s.baseline != "" {
		printBaseline(s, cs)
	}
	if len(conc) > 0 {
		speeds := make([]string, len(conc))
		ok := true
		for i, smp := range conc {
			sp := float64(s.seconds) / smp.wall.Seconds()
			speeds[i] = fmt.Sprintf("%.2fx", sp)
			ok = ok && sp >= 1
		}
		fmt.Printf("%d concurrent 1080p30 4-up composites, as fast as they go: speeds %s "+
			"(realtime needs ≥ 1.00x each) %s\n\n", len(conc), strings.Join(speeds, ", "), mark(ok))
	}
}

// printLayered compares each layer-aware composite with Stagehand decoding
// the top layers, pair by pair.
func printLayered(s settings, cs []*composite) {
	var layered []*composite
	for _, c := range cs {
		if c.layered {
			layered = append(layered, c)
		}
	}
	if len(layered) == 0 {
		return
	}
	fmt.Printf("Layer-aware rows: Stagehand and the decoding floor read each participant's 640x360 layer (what a " +
		"worker receives for a 9-up 1080p tile); both FFmpeg CLI columns read the 1280x720 streams. Against Stagehand " +
		"reading the 1280x720 streams, without layer selection (medians):\n\n")
	fmt.Println("| composite | layer-aware CPU-s/s | without layer selection CPU-s/s | layer-aware/without |")
	fmt.Println("| --- | ---: | ---: | ---: |")
	for _, c := range layered {
		fmt.Printf("| 1080p30 %d-up | %.3f | %.3f | %.3f |\n", c.n, median(c.cpu(s, cStagehand)),
			median(c.cpu(s, cTopLayer)), median(c.ratio(s, cTopLayer)))
	}
	fmt.Println()
}

// printBaseline compares Stagehand with the baseline binary, pair by pair.
func printBaseline(s settings, cs []*composite) {
	fmt.Printf("Against the baseline binary %s (medians of %d pairs):\n\n", s.baseline, s.pairs)
	fmt.Println("| composite | Stagehand CPU-s/s | baseline CPU-s/s | Stagehand/baseline | wall s Stagehand / baseline |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	for _, c := range cs {
		fmt.Printf("| 1080p30 %s | %.3f | %.3f | %.3f | %.2f / %.2f |\n", c.label(),
			median(c.cpu(s, cStagehand)), median(c.cpu(s, cBaseline)), median(c.ratio(s, cBaseline)),
			median(c.wall(s, cStagehand)), median(c.wall(s, cBaseline)))
	}
	fmt.Println()
}

func mark(met bool) string {
	if met {
		return "(met)"
	}
	return "(not met)"
}
