// Package compose runs a composition from media files instead of a stage:
// each input file is a participant, decoded with FFmpeg and fed to the
// composition engine (package engine), which draws it with an IVS layout,
// mixes, encodes and fans out to the same destinations a live composition
// uses (RTMP(S), S3 HLS, a local HLS directory). Benchmarks and users
// debugging a layout drive the engine this way.
//
// The output clock is the frame count: frame k is at k/framerate seconds
// whatever the inputs' frame rates, each input showing its latest frame at
// that time. It runs as fast as the machine allows unless asked for real
// time.
package compose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/engine"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// Input is one file and the token attributes of the participant it plays.
type Input struct {
	Path       string
	Attributes map[string]string
}

// S3 is an S3 HLS recording destination.
type S3 struct {
	Client upload.ClientConfig
	Bucket string
	Prefix string // the recording prefix, e.g. <stage>/<composition>/<destination>/composite
}

// Config is one file-driven composition.
type Config struct {
	Inputs         []Input
	Layout         layout.Config
	Video          encoder.VideoConfig
	Audio          encoder.AudioConfig
	SegmentSeconds int           // HLS target segment duration; default 6
	Duration       time.Duration // 0: until the shortest input ends
	Rendition      string        // HLS rendition folder; default <height>p<fps>
	StageARN       string        // written into the recordings' event objects
	// Realtime paces the output at the wall clock, as a live composition
	// would send it; otherwise it runs as fast as the machine allows.
	Realtime bool

	RTMPURL  string // rtmp:// or rtmps:// channel ingest, with stream key
	RTMPCA   string // CA bundle for RTMPS
	HLSDir   string // local HLS recording
	S3       *S3
	SpoolDir string // where S3 segments wait for upload; default a temporary directory

	// Progress, when set, is called about once per second of output.
	Progress func(Progress)
	Logger   *slog.Logger // default slog.Default()
}

// Progress reports a running composition.
type Progress struct {
	Frames       int
	MediaSeconds float64
	FPS          float64 // frames rendered per wall-clock second
	Speed        float64 // media seconds per wall-clock second
	Destinations []sink.Status
}

// Result summarises a finished composition.
type Result struct {
	Progress
	Wall         time.Duration
	AudioDropped uint64 // samples dropped by the mixer
	Uploads      upload.Stats
}

// Run composes until the shortest input ends (or Duration), then closes
// the outputs. It returns the destinations' failures, if any.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if len(cfg.Inputs) == 0 {
		return Result{}, errors.New("compose: no inputs")
	}
	if cfg.RTMPURL == "" && cfg.HLSDir == "" && cfg.S3 == nil {
		return Result{}, errors.New("compose: no destination: give an RTMP(S) URL, an HLS directory or an S3 location")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "compose")
	files, err := openFiles(cfg.Inputs, cfg.Logger)
	if err != nil {
		return Result{}, fmt.Errorf("compose: %w", err)
	}
	defer files.close()
	ec, cleanup, err := engineConfig(cfg)
	if err != nil {
		return Result{}, fmt.Errorf("compose: %w", err)
	}
	defer cleanup()
	start := time.Now()
	var eng *engine.Engine
	fps := 0 // the engine's frame rate, defaults applied: known once it is made
	ec.OnFrame = func(f engine.Frame) {
		if cfg.Progress != nil && (f.Index+1)%fps == 0 {
			cfg.Progress(progress(eng, f.Index+1, start))
		}
	}
	if eng, err = engine.New(ctx, ec); err != nil {
		return Result{}, fmt.Errorf("compose: %w", err)
	}
	fps = eng.Config().Video.Framerate
	defer eng.Close()
	eng.SetParticipants(files.participants())
	frames, err := eng.Run(ctx, files)
	res := Result{Progress: progress(eng, frames, start), Wall: time.Since(start), AudioDropped: eng.AudioDropped()}
	if ups := eng.Uploads(); len(ups) > 0 {
		res.Uploads = ups[0]
	}
	// A cancelled composition is cut short, a failed destination did not
	// get everything: say so.
	if err = errors.Join(ctx.Err(), err, engine.Failures(res.Destinations)); err != nil {
		return res, fmt.Errorf("compose: %w", err)
	}
	return res, nil
}

// engineConfig turns cfg into the engine's; cleanup removes a temporary
// spool once the engine is closed.
func engineConfig(cfg Config) (engine.Config, func(), error) {
	ec := engine.Config{Layout: cfg.Layout, Video: cfg.Video, Audio: cfg.Audio, SegmentSeconds: cfg.SegmentSeconds,
		StageARN: cfg.StageARN, Realtime: cfg.Realtime, Duration: cfg.Duration, CloseTimeout: 2 * time.Minute,
		Logger: cfg.Logger}
	cleanup := func() {}
	if cfg.RTMPURL != "" {
		ec.Destinations = append(ec.Destinations, engine.Destination{Name: "channel",
			RTMP: &engine.RTMP{URL: cfg.RTMPURL, CAFile: cfg.RTMPCA}})
	}
	if cfg.HLSDir != "" {
		ec.Destinations = append(ec.Destinations, engine.Destination{Name: "hls",
			Recording: &engine.Recording{Dir: cfg.HLSDir, Rendition: cfg.Rendition}})
	}
	if cfg.S3 != nil {
		spool := cfg.SpoolDir
		if spool == "" {
			dir, err := os.MkdirTemp("", "stagehand-spool-")
			if err != nil {
				return ec, cleanup, fmt.Errorf("spool: %w", err)
			}
			spool, cleanup = dir, func() { _ = os.RemoveAll(dir) }
		}
		up := &upload.Config{Client: upload.NewClient(cfg.S3.Client), Bucket: cfg.S3.Bucket, Prefix: cfg.S3.Prefix,
			Dir: spool}
		ec.Destinations = append(ec.Destinations, engine.Destination{Name: "s3",
			Recording: &engine.Recording{Dir: spool, Rendition: cfg.Rendition, Upload: up}})
	}
	return ec, cleanup, nil
}

func progress(eng *engine.Engine, frames int, start time.Time) Progress {
	media := float64(frames) / float64(eng.Config().Video.Framerate)
	wall := math.Max(time.Since(start).Seconds(), 1e-9)
	return Progress{Frames: frames, MediaSeconds: media, FPS: float64(frames) / wall, Speed: media / wall,
		Destinations: eng.Status()}
}
