// Package engine is the one composition engine: participants' decoded
// frames go into a compositor (the IVS layout) and a mixer; an output clock
// renders, mixes and encodes at the encoder's frame rate whatever the inputs
// do, holding each participant's latest frame; a fan-out sends the result
// to every destination (RTMP(S) channels, HLS recordings with their uploads
// and thumbnails).
//
// Inputs reach it through a Source, the way a file composition (package
// compose) and a live stage composition (package worker) differ: a file
// source decodes up to each frame's media time when asked, a live source
// pushes frames from its tracks' goroutines as they arrive. The clock policy
// is the other difference: as fast as the machine allows, or real time.
//
// The engine owns no job, store or stage: what a recording means to a
// composition's bookkeeping reaches it as hooks.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/thumbnail"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// Config is one composition's media settings.
type Config struct {
	Layout         layout.Config
	Video          encoder.VideoConfig
	Audio          encoder.AudioConfig
	SegmentSeconds int    // HLS target segment duration; default ivsrec.DefaultSegmentSeconds
	StageARN       string // written into the recordings' event objects

	Destinations []Destination

	// Realtime paces the output at the wall clock, as a live composition
	// sends it; otherwise frames are made as fast as the machine allows.
	Realtime bool
	// Duration ends the output after this much media; 0: when the source
	// ends or the context is cancelled.
	Duration time.Duration
	// CloseTimeout bounds the wait for the destinations and uploads at the
	// end; default 30 s.
	CloseTimeout time.Duration
	// OnFrame, when set, is told of every frame sent out, from the clock's
	// goroutine.
	OnFrame func(Frame)
	// Handoff, when set and true once the clock stopped, leaves the
	// recordings open for a later run that resumes them.
	Handoff func() bool

	Logger *slog.Logger // default slog.Default()
}

// Frame describes one composite frame sent out.
type Frame struct {
	Index  int           // from 0
	Render time.Duration // compositing
	Encode time.Duration // video and audio encoding
	Late   bool          // rendered more than a frame after its time (real time only)
}

// Source feeds the engine's participants.
type Source interface {
	// Advance is called before the frame at media time t is drawn: a file
	// source decodes its participants up to t and hands their frames to in;
	// a live source, whose tracks push frames as they arrive, does nothing.
	// done ends the composition (a file ran out).
	Advance(t time.Duration, in Inputs) (done bool, err error)
}

// Inputs is what a source feeds: who is on the canvas and in the mix, and
// their frames. Its methods are safe from any goroutine; frames are copied
// (referenced), never kept.
type Inputs interface {
	SetParticipants(ps []layout.Participant)
	Video(participant string, f *astiav.Frame) error
	Audio(participant string, f *astiav.Frame) error
}

// Live is the source of a composition whose inputs push their frames.
type Live struct{}

// Advance does nothing: live tracks push.
func (Live) Advance(time.Duration, Inputs) (bool, error) { return false, nil }

// Engine is one running composition's media path.
type Engine struct {
	cfg        Config
	log        *slog.Logger
	comp       *compositor.Compositor
	mixer      *compositor.Mixer
	venc       *encoder.Video
	aenc       *encoder.Audio
	audioFrame *astiav.Frame
	vparams    *astiav.CodecParameters
	aparams    *astiav.CodecParameters
	fanout     *sink.Fanout
	uploaders  []*upload.Uploader
	recorders  []*ivsrec.Recorder
	thumbs     []*thumbnail.Writer
	final      []sink.Status // the destinations once closed
	closed     bool          // the destinations and uploads are closed
	mixed      int           // audio samples encoded
}

// KeyframeInterval is the encoder's keyframe cadence in frames for a
// segment duration: every 2 s (1 s for odd durations), within what RTMP
// ingest wants, so that every segment boundary falls on a keyframe.
func KeyframeInterval(framerate, segmentSeconds int) int {
	return framerate * (2 - segmentSeconds%2)
}

// New sets up the compositor, the mixer, the encoders and the destinations.
// The destinations outlive ctx's cancellation (Close bounds the wait for
// them); ctx carries its values.
func New(ctx context.Context, cfg Config) (_ *Engine, err error) {
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, mixer: compositor.NewMixer()}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	canvas := layout.Size{W: cfg.Video.Width, H: cfg.Video.Height}
	if e.comp, err = compositor.New(compositor.Config{Canvas: canvas, Layout: cfg.Layout,
		Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	if err := e.openEncoders(); err != nil {
		return nil, err
	}
	// A shutdown still finishes the segments and uploads them.
	ctx = context.WithoutCancel(ctx)
	dests, err := e.destinations(ctx)
	if err != nil {
		return nil, err
	}
	if e.fanout, err = sink.Start(ctx, dests...); err != nil {
		return nil, err
	}
	return e, nil
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Destinations) == 0 {
		return c, errors.New("no destination")
	}
	c.Video = c.Video.WithDefaults()
	if c.SegmentSeconds == 0 {
		c.SegmentSeconds = ivsrec.DefaultSegmentSeconds
	}
	c.Video.KeyframeInterval = KeyframeInterval(c.Video.Framerate, c.SegmentSeconds)
	if err := c.Video.Validate(); err != nil {
		return c, fmt.Errorf("encoder configuration: %w", err)
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

func (e *Engine) openEncoders() (err error) {
	if e.venc, err = encoder.NewVideo(e.cfg.Video); err != nil {
		return err
	}
	if e.aenc, err = encoder.NewAudio(e.cfg.Audio); err != nil {
		return err
	}
	e.vparams, e.aparams = astiav.AllocCodecParameters(), astiav.AllocCodecParameters()
	if err := errors.Join(e.venc.CodecParameters(e.vparams), e.aenc.CodecParameters(e.aparams)); err != nil {
		return err
	}
	e.audioFrame, err = e.aenc.NewFrame()
	return err
}

// SetParticipants changes who is on the canvas and in the mix.
func (e *Engine) SetParticipants(ps []layout.Participant) {
	ids := make([]string, len(ps))
	for i, x := range ps {
		ids[i] = x.ID
	}
	e.comp.SetParticipants(ps)
	e.mixer.SetParticipants(ids)
}

// Video shows f as participant's latest picture.
func (e *Engine) Video(participant string, f *astiav.Frame) error {
	return e.comp.UpdateFrame(participant, f)
}

// Audio adds f to participant's audio in the mix.
func (e *Engine) Audio(participant string, f *astiav.Frame) error {
	return e.mixer.Push(participant, f)
}

// Config is the engine's configuration, defaults applied.
func (e *Engine) Config() Config { return e.cfg }

// Fanout is the destinations' fan-out, for their states and counters.
func (e *Engine) Fanout() *sink.Fanout { return e.fanout }

// Status is the destinations' states and counters; their final ones once
// Run returned.
func (e *Engine) Status() []sink.Status {
	if e.closed {
		return e.final
	}
	return e.fanout.Status()
}

// AudioDropped is how many audio samples the mixer dropped.
func (e *Engine) AudioDropped() uint64 { return e.mixer.Dropped() }

// Run ticks the output clock until src is done, Duration is reached or ctx
// ends, then flushes the encoders and closes the destinations (HLS
// playlists get EXT-X-ENDLIST unless handed off). It returns the frames
// sent; its error joins the clock's, the encoders' and the uploads'. A
// failed destination is not one: its state says so (see Failures).
func (e *Engine) Run(ctx context.Context, src Source) (int, error) {
	frames, err := e.tick(ctx, src)
	// Whatever ended the run, what was encoded reaches the destinations and
	// the recordings are closed.
	return frames, errors.Join(err, e.finish())
}

func (e *Engine) tick(ctx context.Context, src Source) (int, error) {
	clock := newClock(e.cfg.Video.Framerate, e.cfg.Realtime)
	defer clock.stop()
	for k := 0; ; k++ {
		t := clock.mediaTime(k)
		if e.cfg.Duration > 0 && t >= e.cfg.Duration {
			return k, nil
		}
		if !clock.wait(ctx, k) {
			return k, nil
		}
		done, err := src.Advance(t, e)
		if err != nil || done {
			return k, err
		}
		f, err := e.frame(k, t)
		if err != nil {
			return k, err
		}
		f.Late = clock.late(k)
		if e.cfg.OnFrame != nil {
			e.cfg.OnFrame(f)
		}
	}
}

// frame renders, encodes and sends out frame k at media time t with the
// audio up to its end.
func (e *Engine) frame(k int, t time.Duration) (Frame, error) {
	t0 := time.Now()
	picture, err := e.comp.Render()
	if err != nil {
		return Frame{}, fmt.Errorf("render: %w", err)
	}
	t1 := time.Now()
	e.thumbnail(picture, t)
	if err := e.venc.Encode(picture, e.emitVideo); err != nil {
		return Frame{}, err
	}
	if err := e.mix(k + 1); err != nil {
		return Frame{}, err
	}
	return Frame{Index: k, Render: t1.Sub(t0), Encode: time.Since(t1)}, nil
}

// mix encodes the audio up to the end of the first frames frames.
func (e *Engine) mix(frames int) error {
	target := frames * encoder.AudioSampleRate / e.cfg.Video.Framerate
	for ; e.mixed+e.aenc.FrameSize() <= target; e.mixed += e.aenc.FrameSize() {
		if err := e.mixer.Mix(e.audioFrame); err != nil {
			return err
		}
		if err := e.aenc.Encode(e.audioFrame, e.emitAudio); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) emitVideo(pkt *astiav.Packet) error {
	e.fanout.Write(pkt, sink.StreamVideo)
	return nil
}
func (e *Engine) emitAudio(pkt *astiav.Packet) error {
	e.fanout.Write(pkt, sink.StreamAudio)
	return nil
}

// thumbnail offers the composite at media time t to the thumbnail writers;
// one that fails is dropped (the recording goes on without thumbnails).
func (e *Engine) thumbnail(picture *astiav.Frame, t time.Duration) {
	for i, th := range e.thumbs {
		if th == nil {
			continue
		}
		if err := th.Offer(picture, t); err != nil {
			e.log.Warn("thumbnails stopped; the recording goes on", "error", err)
			th.Close()
			e.thumbs[i] = nil
		}
	}
}

func (e *Engine) finish() error {
	if e.cfg.Handoff != nil && e.cfg.Handoff() {
		for _, r := range e.recorders {
			r.Handoff()
		}
	}
	return errors.Join(e.venc.Flush(e.emitVideo), e.aenc.Flush(e.emitAudio), e.closeOutputs())
}

// closeOutputs closes the destinations, then waits for the uploads of what
// they wrote; it returns the uploads' errors. It runs once: at the end of Run, or from Close when Run never
// ran.
func (e *Engine) closeOutputs() error {
	if e.closed {
		return nil
	}
	e.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.CloseTimeout)
	defer cancel()
	var err error
	if e.fanout != nil {
		// Failed destinations are in the states (see Failures): whether
		// they fail the composition is the caller's decision.
		_ = e.fanout.Close(ctx)
		e.final = e.fanout.Status()
	}
	for _, up := range e.uploaders {
		err = errors.Join(err, up.Close(ctx))
	}
	return err
}

// Uploads is the counters of the recordings' uploads, in destination order.
func (e *Engine) Uploads() []upload.Stats {
	st := make([]upload.Stats, len(e.uploaders))
	for i, up := range e.uploaders {
		st[i] = up.Stats()
	}
	return st
}

// Close frees what the engine holds; after Run, or instead of it.
func (e *Engine) Close() {
	_ = e.closeOutputs()
	for _, th := range e.thumbs {
		if th != nil {
			th.Close()
		}
	}
	e.thumbs = nil
	if e.comp != nil {
		e.comp.Close()
	}
	if e.venc != nil {
		e.venc.Close()
	}
	if e.aenc != nil {
		e.aenc.Close()
	}
	if e.audioFrame != nil {
		e.audioFrame.Free()
	}
	for _, cp := range []*astiav.CodecParameters{e.vparams, e.aparams} {
		if cp != nil {
			cp.Free()
		}
	}
}

// Failures is the error of the destinations in st that FAILED; nil if none.
func Failures(st []sink.Status) error {
	var errs []error
	for _, s := range st {
		if s.State == sink.StateFailed {
			errs = append(errs, fmt.Errorf("destination %s: %s", s.Name, s.LastError))
		}
	}
	return errors.Join(errs...)
}
