package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/trackdecode"
)

var errStopRequested = errors.New("stop requested before the composition started")

// runJob runs the claimed composition to its end and settles the claim.
func (w *Worker) runJob(ctx context.Context, c *jobs.Claim) {
	if c.Job.Kind == jobs.KindParticipantRecording {
		w.runParticipantJob(ctx, c)
		return
	}
	arn := c.Job.CompositionARN
	log := w.log.With("composition", arn)
	settle := func(err error) {
		if err != nil {
			log.Warn("settle job", "error", err)
		}
	}
	id, err := compositionID(arn)
	if err != nil {
		settle(c.GiveUp(ctx, err.Error()))
		return
	}
	// Capacity first: a composition that does not fit goes to another
	// worker (or back to this one once there is room).
	need := w.costOf(ctx, id)
	if !w.reserve(ctx, c, need, log) {
		return
	}
	defer w.budget.give(need)
	comp, err := w.take(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errEnded):
		settle(c.Done(ctx))
		return
	case errors.Is(err, errStopRequested):
		w.finish(ctx, id, nil)
		settle(c.Done(ctx))
		return
	case err != nil:
		log.Warn("take composition; returning the job", "error", err)
		settle(c.Return(ctx, 2*time.Second))
		return
	}
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(hbCtx, c) })
	log.Info("composition starting")
	runErr := w.compose(ctx, comp, log)
	stopHeartbeat()
	hb.Wait()
	if errors.Is(runErr, errLostClaim) {
		// The job was delivered again and its new worker runs it: this
		// one lost its claim (it was cut off from NATS) and settles nothing.
		log.Warn("another worker took the composition over; this run stopped")
		return
	}
	if ctx.Err() != nil {
		// The worker is shutting down, not the composition (an error now
		// is most likely the shutdown's): another worker takes it over.
		log.Info("worker stopping; handing the composition back", "error", runErr)
		settle(c.Return(context.WithoutCancel(ctx), 0))
		return
	}
	w.finish(context.WithoutCancel(ctx), id, runErr)
	settle(c.Done(context.WithoutCancel(ctx)))
}

// reserve takes need of the capacity for claim c, or settles c: a job
// that does not fit is returned for another worker; after two returns
// (each spends one of its bounded deliveries) it is kept, heartbeating,
// until room frees here, so that a busy fleet never exhausts it.
func (w *Worker) reserve(ctx context.Context, c *jobs.Claim, need float64, log *slog.Logger) bool {
	if w.budget.take(need) {
		return true
	}
	var err error
	switch {
	case c.Attempt <= 2:
		log.Info("over capacity; returning the job", "cost", need, "attempt", c.Attempt)
		err = c.Return(ctx, 2*time.Second)
	case w.waitFor(ctx, c, need):
		return true
	default:
		err = c.Return(context.WithoutCancel(ctx), 0)
	}
	if err != nil {
		log.Warn("settle job", "error", err)
	}
	return false
}

var errEnded = errors.New("composition already ended")

// costOf is the capacity composition id needs (see cost); the default
// encoder's when its configuration cannot be read now.
func (w *Worker) costOf(ctx context.Context, id string) float64 {
	comp, err := w.store.Compositions.Get(ctx, id)
	if err != nil {
		return cost(encoder.VideoConfig{})
	}
	cfg, err := w.pipelineConfig(ctx, comp)
	if err != nil {
		return cost(encoder.VideoConfig{})
	}
	return cost(cfg.Video)
}

// take marks the composition as this worker's.
func (w *Worker) take(ctx context.Context, id string) (ivs.Composition, error) {
	return w.store.Compositions.Update(ctx, id, func(cp *ivs.Composition) error {
		if cp.Ended() {
			return errEnded
		}
		if cp.Run == nil {
			cp.Run = &ivs.CompositionRun{}
		}
		if cp.Run.StopRequested && cp.State == ivs.CompositionStarting {
			return errStopRequested
		}
		cp.Run.Worker = w.cfg.ID
		return nil
	})
}

// waitFor holds claim c, heartbeating, until need fits; false when ctx ends.
func (w *Worker) waitFor(ctx context.Context, c *jobs.Claim, need float64) bool {
	hbCtx, stop := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(hbCtx, c) })
	defer hb.Wait()
	defer stop()
	for w.budget.waitRoom(ctx, need) {
		if w.budget.take(need) {
			return true
		}
	}
	return false
}

func (w *Worker) heartbeat(ctx context.Context, c *jobs.Claim) {
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Heartbeat(ctx)
		}
	}
}

// finish records the composition's end: STOPPED, or FAILED with runErr.
func (w *Worker) finish(ctx context.Context, id string, runErr error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	state := ivs.CompositionStopped
	if runErr != nil {
		state = ivs.CompositionFailed
	}
	_, err := w.store.Compositions.Update(ctx, id, func(cp *ivs.Composition) error {
		cp.State, cp.EndTime = state, &now
		for i := range cp.Destinations {
			d := &cp.Destinations[i]
			if d.State != ivs.DestinationFailed {
				d.State = ivs.DestinationStopped
			}
			d.EndTime = &now
		}
		if runErr != nil {
			if cp.Run == nil {
				cp.Run = &ivs.CompositionRun{}
			}
			cp.Run.Reason = runErr.Error()
		}
		return nil
	})
	if err != nil {
		w.log.Warn("record composition end", "composition", id, "error", err)
	}
}

// compose runs the media of comp until StopComposition (or ctx) ends it.
func (w *Worker) compose(ctx context.Context, comp ivs.Composition, log *slog.Logger) error {
	id, _ := compositionID(comp.ARN)
	stageARN, err := ivs.ParseARN(comp.StageARN)
	if err != nil {
		return err
	}
	st, err := w.store.Stages.Get(ctx, stageARN.ID)
	if err != nil {
		return fmt.Errorf("stage %s: %w", comp.StageARN, err)
	}
	cfg, err := w.pipelineConfig(ctx, comp)
	if err != nil {
		return err
	}
	// ACTIVE already: a worker ran it and may have recorded (it died or
	// shut down).
	cfg.Resumed = comp.State == ivs.CompositionActive || comp.State == ivs.CompositionStopping
	stopped, err := w.queue.WatchStop(ctx, comp.ARN)
	if err != nil {
		return fmt.Errorf("watch stop signal: %w", err)
	}
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	cancel := func() { cancelRun(nil) }
	w.planRecordings(ctx, &cfg, comp, func() { cancelRun(errLostClaim) }, log)
	p, err := newPipeline(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.close()
	p.metrics = w.metrics
	// The parent context ends when the worker shuts down: the recordings
	// stay open for the worker that resumes the composition.
	p.handoff = func() bool { return ctx.Err() != nil || errors.Is(context.Cause(runCtx), errLostClaim) }
	defer w.metrics.track(id, p.fanout)()
	tok, err := w.subscribeToken(id, st)
	if err != nil {
		return err
	}
	idle := newIdleTimer(w.cfg.IdleTimeout)
	defer idle.stop()
	go func() {
		select {
		case <-stopped:
			log.Info("stop requested")
		case <-idle.expired:
			log.Info("no publisher on the stage; stopping", "idle", w.cfg.IdleTimeout)
		case <-runCtx.Done():
		}
		cancel()
	}()
	var follow sync.WaitGroup
	var followErr error
	follow.Go(func() {
		followErr = client.Follow(runCtx, st.Endpoints.Events, st.Endpoints.WHIP, tok, client.FollowOptions{
			Options: client.Options{ICEIPs: w.cfg.ICEIPs, UserAgent: "stagehand-worker"},
			OnParticipants: func(ps []stage.ParticipantInfo) {
				p.setParticipants(layoutParticipants(ps))
				idle.set(len(ps) > 0)
			},
			OnTrack: func(pid string, tr *webrtc.TrackRemote, sub *client.Subscription) { decodeTrack(p, pid, tr, sub, log) },
			Logger:  log,
		})
		if followErr != nil {
			followErr = fmt.Errorf("following the stage: %w", followErr)
			cancel()
		}
	})
	var states sync.WaitGroup
	fanout := p.fanout
	_, err = p.run(runCtx, func() {
		w.activate(context.WithoutCancel(ctx), id)
		states.Go(func() {
			if w.syncDestinations(runCtx, id, fanout) {
				cancelRun(errAllFailed)
			}
		})
	})
	cancel()
	follow.Wait()
	states.Wait()
	switch cause := context.Cause(runCtx); {
	case errors.Is(cause, errLostClaim):
		return errLostClaim
	case errors.Is(cause, errAllFailed):
		return errors.Join(cause, err)
	}
	w.recordDestinations(context.WithoutCancel(ctx), id, p.final)
	return errors.Join(followErr, err)
}

// errAllFailed ends a composition whose every destination FAILED: it has
// nowhere left to deliver.
var errAllFailed = errors.New("every destination failed")

// planRecordings names each S3 output's rendition, continues the earlier
// runs' recordings of a resumed composition, and connects the recordings to
// their bookkeeping; lost is called if another worker takes them over.
func (w *Worker) planRecordings(ctx context.Context, cfg *pipelineConfig, comp ivs.Composition, lost func(), log *slog.Logger) {
	id, _ := compositionID(comp.ARN)
	var once sync.Once
	for i := range cfg.Outputs {
		o := &cfg.Outputs[i]
		if o.hlsDir == "" {
			continue
		}
		if cfg.Resumed && comp.Run != nil {
			run := comp.Run.Recordings[o.id]
			if o.rendition, o.resume = w.resumePoint(ctx, run, *o, log); o.resume != nil {
				o.firstThumb = run.NextThumbnail
			}
		}
		if o.rendition == "" {
			o.rendition = newRendition(cfg.Video, cfg.Resumed)
		}
		if o.resume != nil {
			log.Info("continuing the recording", "destination", o.id, "rendition", o.rendition,
				"segments", len(o.resume.Segments), "next", o.resume.Next)
		}
		l := &ledger{w: w, compID: id, destID: o.id, rendition: o.rendition, uploads: o.upload != nil,
			lost: func() { once.Do(lost) }, log: log}
		o.hooks = l.hooks(o.hlsDir)
	}
}

// syncDestinations records the destinations' states (RECONNECTING, FAILED,
// ACTIVE again) in the store as they change, until ctx ends or every
// destination FAILED (then it reports true).
func (w *Worker) syncDestinations(ctx context.Context, id string, f *sink.Fanout) bool {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last []sink.Status
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		st := f.Status()
		if !sameStates(st, last) {
			w.recordDestinations(ctx, id, st)
			last = st
		}
		if allFailed(st) {
			return true
		}
	}
}

func sameStates(a, b []sink.Status) bool {
	return slices.EqualFunc(a, b, func(x, y sink.Status) bool { return x.State == y.State })
}

// recordDestinations writes the destinations' states into the store; a
// destination not yet started keeps its state, and STOPPED is finish's.
func (w *Worker) recordDestinations(ctx context.Context, id string, st []sink.Status) {
	_, err := w.store.Compositions.Update(ctx, id, func(cp *ivs.Composition) error {
		if cp.Ended() {
			return errEnded
		}
		for _, s := range st {
			for i := range cp.Destinations {
				if d := &cp.Destinations[i]; d.ID == s.Name && s.State != sink.StateStarting && s.State != sink.StateStopped {
					d.State = string(s.State)
				}
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnded) && ctx.Err() == nil {
		w.log.Warn("record destination states", "composition", id, "error", err)
	}
}

// pipelineConfig reads the encoder and storage configurations of comp.
func (w *Worker) pipelineConfig(ctx context.Context, comp ivs.Composition) (pipelineConfig, error) {
	cfg := pipelineConfig{Layout: comp.Layout.Config(), StageARN: comp.StageARN, RTMPSCAFile: w.cfg.RTMPSCAFile,
		RTMPRetryFor: w.cfg.RTMPRetryFor}
	encARN := ""
	for _, d := range comp.Destinations {
		o := output{id: d.ID}
		switch c := d.Configuration; {
		case c.Channel != nil:
			url, ok := w.cfg.Channels[c.Channel.ChannelARN]
			if !ok {
				return cfg, fmt.Errorf("destination %s: no ingest URL configured for channel %s", d.ID, c.Channel.ChannelARN)
			}
			o.rtmp = url
			encARN = cmpOr(encARN, c.Channel.EncoderConfigurationARN)
		case c.S3 != nil:
			sc, err := getByARN(ctx, w.store.StorageConfigurations, c.S3.StorageConfigurationARN)
			if err != nil {
				return cfg, fmt.Errorf("destination %s: %w", d.ID, err)
			}
			if d.Detail == nil || d.Detail.S3 == nil {
				return cfg, fmt.Errorf("destination %s has no recording prefix", d.ID)
			}
			prefix := d.Detail.S3.RecordingPrefix
			if w.cfg.S3 != nil {
				// <spool>/<bucket>/<key>: a restarted worker knows where
				// what it left belongs (recoverSpool).
				o.hlsDir = filepath.Join(w.cfg.SpoolDir, sc.S3.BucketName, filepath.FromSlash(prefix))
				o.upload = &upload.Config{Client: upload.NewClient(*w.cfg.S3), Bucket: sc.S3.BucketName, Prefix: prefix, Dir: o.hlsDir}
			} else {
				o.hlsDir = filepath.Join(w.cfg.BucketsDir, sc.S3.BucketName, filepath.FromSlash(prefix))
			}
			cfg.SegmentSeconds = c.S3.RecordingConfiguration.HLSConfiguration.TargetSegmentDurationSeconds
			if len(c.S3.ThumbnailConfigurations) > 0 {
				o.thumbs = &c.S3.ThumbnailConfigurations[0]
			}
			if len(c.S3.EncoderConfigurationARNs) > 0 {
				encARN = cmpOr(encARN, c.S3.EncoderConfigurationARNs[0])
			}
		}
		cfg.Outputs = append(cfg.Outputs, o)
	}
	if encARN != "" {
		ec, err := getByARN(ctx, w.store.EncoderConfigurations, encARN)
		if err != nil {
			return cfg, err
		}
		cfg.Video = encoder.VideoConfig{Width: ec.Video.Width, Height: ec.Video.Height,
			Framerate: int(math.Round(ec.Video.Framerate)), Bitrate: ec.Video.Bitrate}
	}
	cfg.Video = cfg.Video.WithDefaults()
	return cfg, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func getByARN[T any](ctx context.Context, t *store.Table[T], arn string) (T, error) {
	a, err := ivs.ParseARN(arn)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := t.Get(ctx, a.ID)
	if err != nil {
		return v, fmt.Errorf("%s: %w", arn, err)
	}
	return v, nil
}

// subscribeToken mints the composition's own SUBSCRIBE token.
func (w *Worker) subscribeToken(id string, st ivs.Stage) (string, error) {
	a, _ := ivs.ParseARN(st.ARN)
	now := time.Now().Truncate(time.Second)
	return w.signer.Sign(token.Claims{ParticipantID: stage.CompositionParticipantPrefix + id, UserID: "composition",
		StageARN: st.ARN, StageID: a.ID, EventsURL: st.Endpoints.Events, WhipURL: st.Endpoints.WHIP,
		Subscribe: true, IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(token.MaxLifetime - time.Minute)})
}

// activate records that the composite goes out.
func (w *Worker) activate(ctx context.Context, id string) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	_, err := w.store.Compositions.Update(ctx, id, func(cp *ivs.Composition) error {
		if cp.Ended() {
			return nil
		}
		if cp.State == ivs.CompositionStarting {
			cp.State = ivs.CompositionActive
		}
		for i := range cp.Destinations {
			if cp.Destinations[i].State == ivs.DestinationStarting {
				cp.Destinations[i].State = ivs.DestinationActive
				cp.Destinations[i].StartTime = &now
			}
		}
		return nil
	})
	if err != nil {
		w.log.Warn("record composition active", "composition", id, "error", err)
	}
}

func layoutParticipants(ps []stage.ParticipantInfo) []layout.Participant {
	out := make([]layout.Participant, 0, len(ps))
	for _, p := range ps {
		video := false
		for _, t := range p.Tracks {
			video = video || t.Kind == "video"
		}
		out = append(out, layout.Participant{ID: p.ParticipantID, Attributes: p.Attributes, VideoStopped: !video})
	}
	return out
}

// decodeTrack feeds one subscribed track to the pipeline until it ends.
func decodeTrack(p *pipeline, pid string, tr *webrtc.TrackRemote, sub *client.Subscription, log *slog.Logger) {
	if tr.Kind() == webrtc.RTPCodecTypeAudio {
		dec, err := trackdecode.NewAudio(tr.Codec().MimeType)
		if err != nil {
			log.Warn("audio track left out", "participant", pid, "error", err)
			return
		}
		defer dec.Close()
		onFrame := func(f *astiav.Frame, _ uint32) { _ = p.mixer.Push(pid, f) }
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			_ = dec.Push(pkt, onFrame)
		}
	}
	dec, err := trackdecode.NewVideo(tr.Codec().MimeType)
	if err != nil {
		log.Warn("video track left out", "participant", pid, "error", err)
		return
	}
	defer dec.Close()
	onFrame := func(f *astiav.Frame, _ uint32) { _ = p.comp.UpdateFrame(pid, f) }
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		_ = dec.Push(pkt, onFrame)
		if dec.NeedsKeyframe() {
			_ = sub.RequestKeyframe(tr)
		}
	}
}

// idleTimer fires when the stage has had no publisher for a while; a zero
// timeout never fires.
type idleTimer struct {
	timeout time.Duration
	expired chan struct{}
	mu      sync.Mutex
	t       *time.Timer
	once    sync.Once
}

func newIdleTimer(timeout time.Duration) *idleTimer {
	it := &idleTimer{timeout: timeout, expired: make(chan struct{})}
	it.set(false) // nobody publishes until the events channel says so
	return it
}

// set records whether anyone publishes.
func (it *idleTimer) set(active bool) {
	if it.timeout <= 0 {
		return
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	switch {
	case active && it.t != nil:
		it.t.Stop()
		it.t = nil
	case !active && it.t == nil:
		it.t = time.AfterFunc(it.timeout, func() { it.once.Do(func() { close(it.expired) }) })
	}
}

func (it *idleTimer) stop() { it.set(true) }
