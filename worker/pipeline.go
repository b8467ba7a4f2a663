package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/rtmp"
	"github.com/stagehand-rt/stagehand/sink/thumbnail"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// output is one destination of a live composition.
type output struct {
	id     string         // the IVS destination id
	rtmp   string         // channel ingest URL, or
	hlsDir string         // HLS recording directory: the bucket's prefix on disk, or the upload's spool
	upload *upload.Config // the S3 upload of hlsDir, if any
	// rendition and resume continue an earlier run's recording; an empty
	// rendition is the default one.
	rendition string
	resume    *ivsrec.Resume
	hooks     *recordingHooks // the recording's bookkeeping, if any
	// thumbs, when set, asks for JPEG thumbnails of the composite, numbered
	// from firstThumb.
	thumbs     *ivs.CompositionThumbnailConfiguration
	firstThumb int
}

// recordingHooks connect a recording to the worker's bookkeeping (see ledger).
type recordingHooks struct {
	Admit       func(index int) error
	OnSegment   func(ivsrec.Segment) error
	OnUploaded  func(upload.Uploaded)
	OnThumbnail func(next int) // a sequential thumbnail was written
}

// pipelineConfig is one live composition's media settings.
type pipelineConfig struct {
	Layout         layout.Config
	Video          encoder.VideoConfig
	SegmentSeconds int
	StageARN       string
	Outputs        []output
	RTMPSCAFile    string
	RTMPRetryFor   time.Duration
	// Resumed: an earlier run recorded under the same prefix; this one
	// writes its own rendition folder rather than over that run's files.
	Resumed bool
}

// pipeline is a live composition's media path: participants' decoded
// frames go in from any goroutine (Video, Audio); the output clock renders,
// mixes and encodes at the encoder's frame rate whatever the inputs do,
// holding each participant's last frame; the fan-out sends the result to
// every destination.
type pipeline struct {
	cfg        pipelineConfig
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
	metrics    *metrics      // may be nil
	// handoff, when set and true once the output clock stopped, leaves
	// the recordings open for the worker that resumes the composition.
	handoff func() bool
}

func newPipeline(ctx context.Context, cfg pipelineConfig) (_ *pipeline, err error) {
	cfg.Video = cfg.Video.WithDefaults()
	if cfg.SegmentSeconds == 0 {
		cfg.SegmentSeconds = ivsrec.DefaultSegmentSeconds
	}
	// Every segment boundary on a keyframe (see package compose).
	cfg.Video.KeyframeInterval = cfg.Video.Framerate * (2 - cfg.SegmentSeconds%2)
	if err := cfg.Video.Validate(); err != nil {
		return nil, fmt.Errorf("encoder configuration: %w", err)
	}
	p := &pipeline{cfg: cfg, mixer: compositor.NewMixer()}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if p.comp, err = compositor.New(compositor.Config{Canvas: layout.Size{W: cfg.Video.Width, H: cfg.Video.Height}, Layout: cfg.Layout}); err != nil {
		return nil, err
	}
	if p.venc, err = encoder.NewVideo(cfg.Video); err != nil {
		return nil, err
	}
	if p.aenc, err = encoder.NewAudio(encoder.AudioConfig{}); err != nil {
		return nil, err
	}
	p.vparams, p.aparams = astiav.AllocCodecParameters(), astiav.AllocCodecParameters()
	if err := errors.Join(p.venc.CodecParameters(p.vparams), p.aenc.CodecParameters(p.aparams)); err != nil {
		return nil, err
	}
	if p.audioFrame, err = p.aenc.NewFrame(); err != nil {
		return nil, err
	}
	// The outputs outlive ctx: a worker that shuts down still finishes
	// its segments and uploads them (closeOutputs bounds the wait).
	ctx = context.WithoutCancel(ctx)
	dests, err := p.destinations(ctx)
	if err != nil {
		return nil, err
	}
	if p.fanout, err = sink.Start(ctx, dests...); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pipeline) destinations(ctx context.Context) ([]sink.Config, error) {
	var dests []sink.Config
	for _, o := range p.cfg.Outputs {
		switch {
		case o.rtmp != "":
			w, err := rtmp.New(rtmp.Config{URL: o.rtmp, CAFile: p.cfg.RTMPSCAFile,
				Video: rtmp.Stream{Params: p.vparams, TimeBase: p.venc.TimeBase()},
				Audio: &rtmp.Stream{Params: p.aparams, TimeBase: p.aenc.TimeBase()}})
			if err != nil {
				return nil, fmt.Errorf("destination %s: %w", o.id, err)
			}
			dests = append(dests, sink.Config{Name: o.id, Writer: w, RetryFor: p.cfg.RTMPRetryFor})
		case o.hlsDir != "":
			var onFile func(string)
			hooks := o.hooks
			if hooks == nil {
				hooks = &recordingHooks{}
			}
			if o.upload != nil {
				// Segments and playlists wait in the spool until S3 has
				// them: an object-store outage loses nothing.
				uc := *o.upload
				uc.OnUploaded = hooks.OnUploaded
				up, err := upload.Start(ctx, uc)
				if err != nil {
					return nil, fmt.Errorf("destination %s: %w", o.id, err)
				}
				p.uploaders = append(p.uploaders, up)
				onFile = up.Enqueue
			}
			r, err := ivsrec.New(ivsrec.Config{
				OnFile: onFile, Resume: o.resume, Admit: hooks.Admit, OnSegment: hooks.OnSegment,
				Dir: o.hlsDir, Rendition: cmpOr(o.rendition, newRendition(p.cfg.Video, p.cfg.Resumed)),
				SegmentSeconds: p.cfg.SegmentSeconds, Framerate: p.cfg.Video.Framerate,
				Bandwidth: p.cfg.Video.Bitrate + encoder.DefaultAudioBitrate, StageARN: p.cfg.StageARN,
				Video: ivsrec.Stream{Params: p.vparams, TimeBase: p.venc.TimeBase()},
				Audio: &ivsrec.Stream{Params: p.aparams, TimeBase: p.aenc.TimeBase()},
			})
			if err != nil {
				return nil, fmt.Errorf("destination %s: %w", o.id, err)
			}
			p.recorders = append(p.recorders, r)
			if o.thumbs != nil {
				th, err := p.thumbnails(o, onFile, hooks.OnThumbnail)
				if err != nil {
					return nil, fmt.Errorf("destination %s: %w", o.id, err)
				}
				p.thumbs = append(p.thumbs, th)
			}
			// Recordings must not lose packets: a deep queue absorbs disk stalls.
			dests = append(dests, sink.Config{Name: o.id, Writer: r, QueueSize: 4096})
		}
	}
	return dests, nil
}

// thumbnails writes o's thumbnails of the composite, as IVS lays them out:
// media/thumbnails/<rendition>/<n>.jpg and media/latest_thumbnail/<rendition>/thumb.jpg.
func (p *pipeline) thumbnails(o output, onFile func(string), onSequential func(int)) (*thumbnail.Writer, error) {
	rendition := cmpOr(o.rendition, newRendition(p.cfg.Video, p.cfg.Resumed))
	tc := thumbnail.Config{Dir: o.hlsDir, Interval: time.Duration(max(1, o.thumbs.TargetIntervalSeconds)) * time.Second,
		FirstIndex: o.firstThumb}
	for _, s := range o.thumbs.Storage {
		switch s {
		case "SEQUENTIAL":
			tc.SequentialDir = ivsrec.ThumbnailsDir(rendition)
		case "LATEST":
			tc.LatestDir = ivsrec.LatestThumbnailDir(rendition)
		}
	}
	var th *thumbnail.Writer
	tc.OnFile = func(rel string) {
		if onFile != nil {
			onFile(rel)
		}
		if onSequential != nil && tc.SequentialDir != "" && strings.HasPrefix(rel, tc.SequentialDir+"/") {
			onSequential(th.Next() + 1) // Next counts the file after it is announced
		}
	}
	th, err := thumbnail.New(tc)
	return th, err
}

// newRendition names a new HLS rendition folder: <height>p<fps>, with a
// random suffix for a resumed run that cannot continue the earlier
// recording, so that nothing recorded before is overwritten.
func newRendition(v encoder.VideoConfig, resumed bool) string {
	r := fmt.Sprintf("%dp%d", v.Height, v.Framerate)
	if resumed {
		r += "-" + ivs.RandomString(8)
	}
	return r
}

// setParticipants changes who is on the canvas and in the mix.
func (p *pipeline) setParticipants(ps []layout.Participant) {
	ids := make([]string, len(ps))
	for i, x := range ps {
		ids[i] = x.ID
	}
	p.comp.SetParticipants(ps)
	p.mixer.SetParticipants(ids)
}

// run ticks the output clock until ctx ends, then flushes the encoders and
// closes the destinations (HLS playlists get EXT-X-ENDLIST). onFirst is
// called once the first frame went out.
func (p *pipeline) run(ctx context.Context, onFirst func()) (int, error) {
	emitVideo := func(pkt *astiav.Packet) error { p.fanout.Write(pkt, sink.StreamVideo); return nil }
	emitAudio := func(pkt *astiav.Packet) error { p.fanout.Write(pkt, sink.StreamAudio); return nil }
	frames, err := p.tick(ctx, onFirst, emitVideo, emitAudio)
	// Whatever ended the run, what was encoded reaches the destinations
	// and the recordings are closed.
	return frames, errors.Join(err, p.finish(emitVideo, emitAudio))
}

func (p *pipeline) tick(ctx context.Context, onFirst func(), emitVideo, emitAudio func(*astiav.Packet) error) (int, error) {
	fps := p.cfg.Video.Framerate
	start := time.Now()
	mixed := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return k, nil
		case <-timer.C:
		}
		due := start.Add(time.Duration(k) * time.Second / time.Duration(fps))
		t0 := time.Now()
		frame, err := p.comp.Render()
		if err != nil {
			return k, fmt.Errorf("render: %w", err)
		}
		t1 := time.Now()
		p.thumbnail(frame, time.Duration(k)*time.Second/time.Duration(fps))
		if err := p.venc.Encode(frame, emitVideo); err != nil {
			return k, err
		}
		for target := (k + 1) * encoder.AudioSampleRate / fps; mixed+p.aenc.FrameSize() <= target; mixed += p.aenc.FrameSize() {
			if err := p.mixer.Mix(p.audioFrame); err != nil {
				return k, err
			}
			if err := p.aenc.Encode(p.audioFrame, emitAudio); err != nil {
				return k, err
			}
		}
		if m := p.metrics; m != nil {
			m.render.Observe(t1.Sub(t0).Seconds())
			m.encode.Observe(time.Since(t1).Seconds())
			m.frames.Inc()
			if t0.Sub(due) > time.Second/time.Duration(fps) {
				m.late.Inc()
			}
		}
		if k == 0 && onFirst != nil {
			onFirst()
		}
		// Frame k+1 is due at its media time: an absolute clock, so that
		// the output does not drift with the time spent encoding.
		timer.Reset(time.Until(start.Add(time.Duration(k+1) * time.Second / time.Duration(fps))))
	}
}

// thumbnail offers the composite at media time t to the thumbnail writers;
// one that fails is dropped (the recording goes on without thumbnails).
func (p *pipeline) thumbnail(frame *astiav.Frame, t time.Duration) {
	for i, th := range p.thumbs {
		if th == nil {
			continue
		}
		if err := th.Offer(frame, t); err != nil {
			slog.Warn("thumbnails stopped; the recording goes on", "component", "worker", "error", err)
			th.Close()
			p.thumbs[i] = nil
		}
	}
}

func (p *pipeline) finish(emitVideo, emitAudio func(*astiav.Packet) error) error {
	if p.handoff != nil && p.handoff() {
		for _, r := range p.recorders {
			r.Handoff()
		}
	}
	return errors.Join(p.venc.Flush(emitVideo), p.aenc.Flush(emitAudio), p.closeOutputs())
}

// closeOutputs closes the destinations, then waits for the uploads of what
// they wrote. It runs once: at the end of run, or from close when run
// never ran (an error between newPipeline and run). A destination that
// failed is an error of the composition only when every one failed: the
// others delivered, and its FAILED state says what became of it.
func (p *pipeline) closeOutputs() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if p.fanout != nil {
		err = p.fanout.Close(ctx)
		p.final = p.fanout.Status()
		if !allFailed(p.final) {
			err = nil
		}
		p.fanout = nil
	}
	for _, up := range p.uploaders {
		err = errors.Join(err, up.Close(ctx))
	}
	p.uploaders = nil
	return err
}

// allFailed reports whether every destination is FAILED.
func allFailed(st []sink.Status) bool {
	for _, s := range st {
		if s.State != sink.StateFailed {
			return false
		}
	}
	return len(st) > 0
}

func (p *pipeline) close() {
	_ = p.closeOutputs()
	for _, th := range p.thumbs {
		if th != nil {
			th.Close()
		}
	}
	p.thumbs = nil
	if p.comp != nil {
		p.comp.Close()
	}
	if p.venc != nil {
		p.venc.Close()
	}
	if p.aenc != nil {
		p.aenc.Close()
	}
	if p.audioFrame != nil {
		p.audioFrame.Free()
	}
	for _, cp := range []*astiav.CodecParameters{p.vparams, p.aparams} {
		if cp != nil {
			cp.Free()
		}
	}
}
