package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/stagehand-rt/stagehand/layout"
)

// The composite every contender produces: what compose.Run and
// encoder.NewVideo do with the encoder configuration the benchmark writes.
const (
	canvasW, canvasH = 1920, 1080
	framerate        = 30
	videoBitrate     = 6_000_000
	audioBitrate     = 160_000
	preset           = "veryfast"
	segmentSeconds   = 6
	// keyint is compose's cadence for 6 s segments: a keyframe every 2 s.
	keyint = 2 * framerate
	// stagehandScaler is the libswscale filter compositor uses (scaleFlags).
	stagehandScaler = "area"
)

// x264Args are libx264's settings as encoder.NewVideo sets them. Threads
// too: encoder.NewVideo leaves FFmpeg's libx264 default (threads auto) and
// zerolatency's sliced threads, one slice per core; the CLI's own default
// would switch libx264 to frame threads.
func x264Args() []string {
	b := strconv.Itoa(videoBitrate)
	return []string{
		"-c:v", "libx264", "-threads:v", "0", "-thread_type:v", "slice", "-preset", preset, "-tune", "zerolatency",
		"-b:v", b, "-maxrate", b, "-bufsize", b, "-g", strconv.Itoa(keyint), "-keyint_min", strconv.Itoa(keyint),
		"-sc_threshold", "0", "-bf", "0", "-forced-idr", "1", "-x264-params", "repeat-headers=1",
		"-pix_fmt", "yuv420p",
	}
}

// aacArgs are the composite audio's settings (encoder.NewAudio).
func aacArgs() []string {
	return []string{"-c:a", "aac", "-b:a", strconv.Itoa(audioBitrate), "-ar", "48000", "-ac", "2"}
}

// tiles computes Stagehand's grid for n 1280x720 participants, so that the
// FFmpeg CLI draws exactly the rectangles the compositor draws.
func tiles(n int) ([]layout.Tile, error) {
	ps := make([]layout.Participant, n)
	for i := range ps {
		ps[i] = layout.Participant{ID: strconv.Itoa(i), Video: layout.Size{W: inputW, H: inputH}}
	}
	l, err := layout.Compute(layout.Size{W: canvasW, H: canvasH}, ps, layout.Config{})
	if err != nil {
		return nil, fmt.Errorf("layout of %d: %w", n, err)
	}
	return l.Tiles, nil
}

// filterGraph is the FFmpeg CLI's way to draw the same grid: crop (COVER),
// scale each input into its tile, stack them with xstack on the background
// colour, pad to the canvas, and mix the audio. scaler is the libswscale
// filter ("" for the scale filter's default, bicubic).
func filterGraph(ts []layout.Tile, scaler string) string {
	var g strings.Builder
	flags := ""
	if scaler != "" {
		flags = ":flags=" + scaler
	}
	pos := make([]string, len(ts))
	maxX, maxY := 0, 0
	for i, t := range ts {
		fmt.Fprintf(&g, "[%d:v]", t.Participant)
		if t.Crop != (layout.Rect{W: inputW, H: inputH}) {
			fmt.Fprintf(&g, "crop=%d:%d:%d:%d,", t.Crop.W, t.Crop.H, t.Crop.X, t.Crop.Y)
		}
		fmt.Fprintf(&g, "scale=%d:%d%s[v%d];", t.Video.W, t.Video.H, flags, i)
		pos[i] = fmt.Sprintf("%d_%d", t.Video.X, t.Video.Y)
		maxX, maxY = max(maxX, t.Video.X+t.Video.W), max(maxY, t.Video.Y+t.Video.H)
	}
	for i := range ts {
		fmt.Fprintf(&g, "[v%d]", i)
	}
	if len(ts) == 1 {
		// xstack wants two inputs at least; one tile is a pad.
		fmt.Fprintf(&g, "pad=%d:%d:%d:%d:black", canvasW, canvasH, ts[0].Video.X, ts[0].Video.Y)
	} else {
		fmt.Fprintf(&g, "xstack=inputs=%d:layout=%s:fill=black", len(ts), strings.Join(pos, "|"))
		if maxX != canvasW || maxY != canvasH {
			fmt.Fprintf(&g, ",pad=%d:%d:0:0:black", canvasW, canvasH)
		}
	}
	g.WriteString(",setsar=1[v];")
	for i := range ts {
		fmt.Fprintf(&g, "[%d:a]", i)
	}
	fmt.Fprintf(&g, "amix=inputs=%d[a]", len(ts))
	return g.String()
}

// ffmpegComposite is the FFmpeg CLI command for the composite, to HLS in
// dir, as a user would run it: decoders with the CLI's default threading.
func ffmpegComposite(inputs []string, ts []layout.Tile, scaler string, dir string) []string {
	args := []string{"-nostdin", "-loglevel", "error", "-y"}
	for _, in := range inputs {
		args = append(args, "-i", in)
	}
	args = append(args, "-filter_complex", filterGraph(ts, scaler), "-map", "[v]", "-map", "[a]")
	args = append(args, x264Args()...)
	args = append(args, aacArgs()...)
	return append(args, "-f", "hls", "-hls_time", strconv.Itoa(segmentSeconds), "-hls_list_size", "0",
		"-hls_segment_type", "mpegts", "-hls_segment_filename", dir+"/%d.ts", dir+"/playlist.m3u8")
}

// ffmpegDecode decodes the inputs and throws the frames away: the decoding
// half of the codec floor, single-threaded decoders as compose uses them.
func ffmpegDecode(inputs []string) []string {
	args := []string{"-nostdin", "-loglevel", "error"}
	for _, in := range inputs {
		args = append(args, "-threads", "1", "-i", in)
	}
	for i := range inputs {
		args = append(args, "-map", fmt.Sprintf("%d:v", i), "-map", fmt.Sprintf("%d:a", i))
	}
	return append(args, "-c:v", "wrapped_avframe", "-c:a", "pcm_f32le", "-f", "null", "-")
}

// ffmpegRaw decodes a composite to raw frames and samples on stdout (NUT):
// the source of the encoding half of the floor, not itself measured.
func ffmpegRaw(composite string) []string {
	return []string{"-nostdin", "-loglevel", "error", "-i", composite,
		"-c:v", "rawvideo", "-c:a", "pcm_s16le", "-f", "nut", "-"}
}

// ffmpegEncode encodes raw frames and samples from stdin with the
// composite's settings: the encoding half of the codec floor.
func ffmpegEncode() []string {
	args := []string{"-nostdin", "-loglevel", "error", "-f", "nut", "-i", "-"}
	args = append(args, x264Args()...)
	args = append(args, aacArgs()...)
	return append(args, "-f", "null", "-")
}
