// Package compose runs a composition from media files instead of a stage:
// each input file is a participant, decoded with FFmpeg, drawn by the
// compositor with an IVS layout, mixed, encoded and fanned out to the same
// destinations a live composition uses (RTMP(S), S3 HLS, a local HLS
// directory). Benchmarks and users debugging a layout drive the pipeline
// this way.
//
// The output clock is the frame count: frame k is at k/framerate seconds
// whatever the inputs' frame rates, each input showing its latest frame at
// that time. It runs as fast as the machine allows, not in real time.
package compose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/rtmp"
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

type participant struct {
	id         string
	in         *input
	pending    *astiav.Frame // holds a decoded video frame not due yet when hasPending
	pendingT   float64
	hasPending bool
	t0         float64 // the input's first timestamp, subtracted from all
	started    bool
	done       bool
	audioErr   bool // its audio was refused once; not logged again
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
	cfg.Video = cfg.Video.WithDefaults()
	if cfg.SegmentSeconds == 0 {
		cfg.SegmentSeconds = ivsrec.DefaultSegmentSeconds
	}
	// Keyframes every 2 s (1 s for odd segment durations): within what RTMP
	// ingest wants, and every segment boundary falls on one.
	cfg.Video.KeyframeInterval = cfg.Video.Framerate * (2 - cfg.SegmentSeconds%2)
	if err := cfg.Video.Validate(); err != nil {
		return Result{}, fmt.Errorf("compose: encoder: %w", err)
	}
	if cfg.Rendition == "" {
		cfg.Rendition = fmt.Sprintf("%dp%d", cfg.Video.Height, cfg.Video.Framerate)
	}
	p, err := newPipeline(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer p.close()
	return p.run(ctx)
}

type pipeline struct {
	cfg          Config
	participants []*participant
	comp         *compositor.Compositor
	mixer        *compositor.Mixer
	venc         *encoder.Video
	aenc         *encoder.Audio
	audioFrame   *astiav.Frame
	vparams      *astiav.CodecParameters
	aparams      *astiav.CodecParameters
	fanout       *sink.Fanout
	uploader     *upload.Uploader
	spool        string // temporary spool to remove at the end
}

func newPipeline(ctx context.Context, cfg Config) (_ *pipeline, err error) {
	p := &pipeline{cfg: cfg, mixer: compositor.NewMixer()}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	ids := make([]string, len(cfg.Inputs))
	lps := make([]layout.Participant, len(cfg.Inputs))
	for i, in := range cfg.Inputs {
		dec, err := openInput(in.Path)
		if err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		ids[i] = fmt.Sprintf("P%d", i+1)
		p.participants = append(p.participants, &participant{id: ids[i], in: dec, pending: astiav.AllocFrame()})
		lps[i] = layout.Participant{ID: ids[i], Attributes: in.Attributes, VideoStopped: dec.video == nil}
	}
	if p.comp, err = compositor.New(compositor.Config{Canvas: layout.Size{W: cfg.Video.Width, H: cfg.Video.Height}, Layout: cfg.Layout}); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	p.comp.SetParticipants(lps)
	p.mixer.SetParticipants(ids)
	if p.venc, err = encoder.NewVideo(cfg.Video); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if p.aenc, err = encoder.NewAudio(cfg.Audio); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	p.vparams, p.aparams = astiav.AllocCodecParameters(), astiav.AllocCodecParameters()
	if err := errors.Join(p.venc.CodecParameters(p.vparams), p.aenc.CodecParameters(p.aparams)); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if p.audioFrame, err = p.aenc.NewFrame(); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	dests, err := p.destinations(ctx)
	if err != nil {
		return nil, err
	}
	if p.fanout, err = sink.Start(ctx, dests...); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	return p, nil
}

// destinations builds the sink writers the configuration asks for.
func (p *pipeline) destinations(ctx context.Context) ([]sink.Config, error) {
	cfg := p.cfg
	var dests []sink.Config
	recorder := func(dir string, onFile func(string)) (*ivsrec.Recorder, error) {
		return ivsrec.New(ivsrec.Config{
			Dir: dir, Rendition: cfg.Rendition, SegmentSeconds: cfg.SegmentSeconds, Framerate: cfg.Video.Framerate,
			Bandwidth: cfg.Video.Bitrate + encoder.DefaultAudioBitrate, OnFile: onFile, StageARN: cfg.StageARN,
			Video: ivsrec.Stream{Params: p.vparams, TimeBase: p.venc.TimeBase()},
			Audio: &ivsrec.Stream{Params: p.aparams, TimeBase: p.aenc.TimeBase()},
		})
	}
	if cfg.RTMPURL != "" {
		w, err := rtmp.New(rtmp.Config{URL: cfg.RTMPURL, CAFile: cfg.RTMPCA,
			Video: rtmp.Stream{Params: p.vparams, TimeBase: p.venc.TimeBase()},
			Audio: &rtmp.Stream{Params: p.aparams, TimeBase: p.aenc.TimeBase()}})
		if err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		dests = append(dests, sink.Config{Name: "channel", Writer: w})
	}
	if cfg.HLSDir != "" {
		r, err := recorder(cfg.HLSDir, nil)
		if err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		// Recordings must not lose packets: a deep queue absorbs disk stalls.
		dests = append(dests, sink.Config{Name: "hls", Writer: r, QueueSize: 4096})
	}
	if cfg.S3 != nil {
		spool := cfg.SpoolDir
		if spool == "" {
			dir, err := os.MkdirTemp("", "stagehand-spool-")
			if err != nil {
				return nil, fmt.Errorf("compose: spool: %w", err)
			}
			spool, p.spool = dir, dir
		}
		up, err := upload.Start(ctx, upload.Config{Client: upload.NewClient(cfg.S3.Client), Bucket: cfg.S3.Bucket, Prefix: cfg.S3.Prefix, Dir: spool})
		if err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		p.uploader = up
		r, err := recorder(spool, up.Enqueue)
		if err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		dests = append(dests, sink.Config{Name: "s3", Writer: r, QueueSize: 4096})
	}
	return dests, nil
}

func (p *pipeline) run(ctx context.Context) (Result, error) {
	start := time.Now()
	fps := p.cfg.Video.Framerate
	emitVideo := func(pkt *astiav.Packet) error { p.fanout.Write(pkt, sink.StreamVideo); return nil }
	emitAudio := func(pkt *astiav.Packet) error { p.fanout.Write(pkt, sink.StreamAudio); return nil }
	var res Result
	mixed := 0
	var runErr error
	for k := 0; ; k++ {
		t := float64(k) / float64(fps)
		if p.cfg.Duration > 0 && t >= p.cfg.Duration.Seconds() {
			break
		}
		if p.cfg.Realtime {
			if wait := time.Until(start.Add(time.Duration(t * float64(time.Second)))); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			runErr = ctx.Err()
			break
		}
		ended := false
		for _, pa := range p.participants {
			if err := p.advance(pa, t); err != nil {
				return res, err
			}
			ended = ended || (pa.done && !pa.hasPending)
		}
		if ended && p.cfg.Duration == 0 {
			break
		}
		frame, err := p.comp.Render()
		if err != nil {
			return res, fmt.Errorf("compose: render: %w", err)
		}
		if err := p.venc.Encode(frame, emitVideo); err != nil {
			return res, fmt.Errorf("compose: %w", err)
		}
		for target := (k + 1) * encoder.AudioSampleRate / fps; mixed+p.aenc.FrameSize() <= target; mixed += p.aenc.FrameSize() {
			if err := p.mixer.Mix(p.audioFrame); err != nil {
				return res, fmt.Errorf("compose: %w", err)
			}
			if err := p.aenc.Encode(p.audioFrame, emitAudio); err != nil {
				return res, fmt.Errorf("compose: %w", err)
			}
		}
		res.Frames = k + 1
		if p.cfg.Progress != nil && (k+1)%fps == 0 {
			p.cfg.Progress(p.progress(res.Frames, start))
		}
	}
	err := errors.Join(runErr, p.venc.Flush(emitVideo), p.aenc.Flush(emitAudio))
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	err = errors.Join(err, p.fanout.Close(closeCtx))
	if p.uploader != nil {
		err = errors.Join(err, p.uploader.Close(closeCtx))
		res.Uploads = p.uploader.Stats()
	}
	res.Progress = p.progress(res.Frames, start)
	res.Wall = time.Since(start)
	res.AudioDropped = p.mixer.Dropped()
	return res, err
}

func (p *pipeline) progress(frames int, start time.Time) Progress {
	media := float64(frames) / float64(p.cfg.Video.Framerate)
	wall := math.Max(time.Since(start).Seconds(), 1e-9)
	return Progress{Frames: frames, MediaSeconds: media, FPS: float64(frames) / wall, Speed: media / wall, Destinations: p.fanout.Status()}
}

// advance decodes participant pa up to output time t: its latest video frame
// at or before t goes to the compositor, its audio to the mixer.
func (p *pipeline) advance(pa *participant, t float64) error {
	if pa.hasPending {
		if pa.pendingT > t {
			return nil
		}
		err := p.comp.UpdateFrame(pa.id, pa.pending)
		pa.pending.Unref()
		pa.hasPending = false
		if err != nil {
			return fmt.Errorf("compose: %w", err)
		}
	}
	for !pa.done {
		video, ft, ok, err := pa.in.next()
		if err != nil {
			return fmt.Errorf("compose: %w", err)
		}
		if !ok {
			pa.done = true
			return nil
		}
		if !pa.started && !math.IsNaN(ft) {
			pa.t0, pa.started = ft, true
		}
		ft -= pa.t0
		f := pa.in.frame
		switch {
		case !video:
			p.pushAudio(pa, f)
			f.Unref()
			if ft > t {
				return nil // audio is decoded a little ahead; the mixer buffers it
			}
		case ft > t:
			err := pa.pending.Ref(f)
			f.Unref()
			if err != nil {
				return fmt.Errorf("compose: %w", err)
			}
			pa.pendingT, pa.hasPending = ft, true
			return nil
		default:
			err := p.comp.UpdateFrame(pa.id, f)
			f.Unref()
			if err != nil {
				return fmt.Errorf("compose: %w", err)
			}
		}
	}
	return nil
}

func (p *pipeline) pushAudio(pa *participant, f *astiav.Frame) {
	if err := p.mixer.Push(pa.id, f); err != nil && !pa.audioErr {
		pa.audioErr = true
		slog.Warn("participant's audio left out of the mix", "component", "compose", "participant", pa.id, "input", pa.in.path, "error", err)
	}
}

func (p *pipeline) close() {
	for _, pa := range p.participants {
		pa.in.close()
		pa.pending.Free()
	}
	if p.comp != nil {
		p.comp.Close()
	}
	if p.venc != nil {
		p.venc.Close()
	}
	if p.aenc != nil {
		p.aenc.Close()
	}
	for _, f := range []*astiav.Frame{p.audioFrame} {
		if f != nil {
			f.Free()
		}
	}
	for _, cp := range []*astiav.CodecParameters{p.vparams, p.aparams} {
		if cp != nil {
			cp.Free()
		}
	}
	if p.fanout == nil && p.uploader != nil { // set-up failed after the uploader started
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = p.uploader.Close(ctx)
	}
	if p.spool != "" {
		_ = os.RemoveAll(p.spool)
	}
}
