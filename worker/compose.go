package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/engine"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// errAllFailed ends a composition whose every destination FAILED: it has
// nowhere left to deliver.
var errAllFailed = errors.New("every destination failed")

// run is one run of a composition on this worker: the engine fed by the
// composition's subscription to its stage, ended by StopComposition, the
// stage going idle, every destination failing, the claim being lost, or
// the worker shutting down.
type run struct {
	w      *Worker
	id     string
	comp   ivs.Composition
	stage  ivs.Stage
	token  string // the composition's SUBSCRIBE token
	log    *slog.Logger
	eng    *engine.Engine
	parent context.Context // the worker's: it ends when the worker shuts down
	ctx    context.Context // the run's: cancelled, with a cause, to end it
	cancel context.CancelCauseFunc
	states sync.WaitGroup // syncs the destinations' states once the composite goes out
	layers *layerPlan     // the simulcast layer each publisher is received in
}

// compose runs the media of comp until StopComposition (or ctx) ends it.
func (w *Worker) compose(ctx context.Context, comp ivs.Composition, log *slog.Logger) error {
	r, err := w.newRun(ctx, comp, log)
	if err != nil {
		return err
	}
	defer r.eng.Close()
	defer r.cancel(nil)
	defer w.metrics.track(r.id, r.eng.Fanout())()
	stopped, err := w.queue.WatchStop(ctx, comp.ARN)
	if err != nil {
		return fmt.Errorf("watch stop signal: %w", err)
	}
	idle := newIdleTimer(w.cfg.IdleTimeout)
	defer idle.stop()
	var follow sync.WaitGroup
	var followErr error
	follow.Go(func() { r.endOn(stopped, idle.expired) })
	follow.Go(func() { followErr = r.follow(idle) })
	_, err = r.eng.Run(r.ctx, engine.Live{})
	r.cancel(nil)
	follow.Wait()
	r.states.Wait()
	return r.outcome(errors.Join(followErr, err))
}

// newRun reads what comp needs (its stage, its IVS resources), plans its
// recordings and sets up its engine.
func (w *Worker) newRun(ctx context.Context, comp ivs.Composition, log *slog.Logger) (*run, error) {
	id, _ := compositionID(comp.ARN)
	stageARN, err := ivs.ParseARN(comp.StageARN)
	if err != nil {
		return nil, err
	}
	st, err := w.store.Stages.Get(ctx, stageARN.ID)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", comp.StageARN, err)
	}
	cfg, err := w.settings(ctx, comp)
	if err != nil {
		return nil, err
	}
	tok, err := w.tokens.CompositionToken(ctx, id)
	if err != nil {
		return nil, err
	}
	r := &run{w: w, id: id, comp: comp, stage: st, token: tok, log: log, parent: ctx}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	// ACTIVE already: a worker ran it and may have recorded (it died or
	// shut down).
	resumed := comp.State == ivs.CompositionActive || comp.State == ivs.CompositionStopping
	w.planRecordings(ctx, &cfg, comp, resumed, func() { r.cancel(errLostClaim) }, log)
	cfg.OnFrame = r.onFrame
	// A worker shutting down, or one that lost its claim, leaves the
	// recordings open for the worker that resumes the composition.
	cfg.Handoff = func() bool { return ctx.Err() != nil || errors.Is(context.Cause(r.ctx), errLostClaim) }
	cfg.Logger = log
	r.layers = newLayerPlan(layout.Size{W: cfg.Video.Width, H: cfg.Video.Height}, cfg.Layout)
	if r.eng, err = engine.New(ctx, cfg); err != nil {
		r.cancel(nil)
		return nil, err
	}
	return r, nil
}

// endOn ends the run on StopComposition or an idle stage.
func (r *run) endOn(stopped <-chan struct{}, idle <-chan struct{}) {
	select {
	case <-stopped:
		r.log.Info("stop requested")
	case <-idle:
		r.log.Info("no publisher on the stage; stopping", "idle", r.w.cfg.IdleTimeout)
	case <-r.ctx.Done():
	}
	r.cancel(nil)
}

// follow subscribes to the stage and feeds its participants and tracks to
// the engine until the run ends; an error ends the run.
func (r *run) follow(idle *idleTimer) error {
	err := client.Follow(r.ctx, r.stage.Endpoints.Events, r.stage.Endpoints.WHIP, r.token, client.FollowOptions{
		Options: r.w.stageOptions("stagehand-worker"),
		OnParticipants: func(ps []stage.ParticipantInfo) {
			r.layers.update(ps)
			r.eng.SetParticipants(layoutParticipants(ps))
			idle.set(len(ps) > 0)
		},
		Layer: r.layers.layer,
		OnTrack: func(pid string, tr *webrtc.TrackRemote, sub *client.Subscription) {
			height := func(int) {}
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				var forget func()
				height, forget = r.w.metrics.inputSize(r.id, pid)
				defer forget()
			}
			decodeTrack(r.eng, pid, tr, sub, r.log, height)
		},
		Logger: r.log,
	})
	if err != nil {
		r.cancel(nil)
		return fmt.Errorf("following the stage: %w", err)
	}
	return nil
}

// onFrame counts a composite frame; the first makes the composition ACTIVE.
func (r *run) onFrame(f engine.Frame) {
	if m := r.w.metrics; m != nil {
		m.render.Observe(f.Render.Seconds())
		m.encode.Observe(f.Encode.Seconds())
		m.frames.Inc()
		if f.Late {
			m.late.Inc()
		}
	}
	if f.Index == 0 {
		r.w.activate(context.WithoutCancel(r.parent), r.id)
		r.states.Go(r.syncStates)
	}
}

// syncStates records the destinations' states as they change; every
// destination FAILED ends the run.
func (r *run) syncStates() {
	if r.w.syncDestinations(r.ctx, r.id, r.eng.Fanout()) {
		r.cancel(errAllFailed)
	}
}

// outcome is the run's result once it ended with err: errLostClaim when
// another worker took the composition over; otherwise the destinations'
// final states are recorded, and their failures are the run's only when
// every one failed (the others delivered; a FAILED state says what became
// of one).
func (r *run) outcome(err error) error {
	switch cause := context.Cause(r.ctx); {
	case errors.Is(cause, errLostClaim):
		return errLostClaim
	case errors.Is(cause, errAllFailed):
		return errors.Join(cause, err, engine.Failures(r.eng.Status()))
	}
	final := r.eng.Status()
	r.w.recordDestinations(context.WithoutCancel(r.parent), r.id, final)
	if allFailed(final) {
		err = errors.Join(err, engine.Failures(final))
	}
	return err
}

// planRecordings names each recording's rendition, continues the earlier
// runs' recordings of a resumed composition, and connects the recordings to
// their bookkeeping; lost is called if another worker takes them over.
func (w *Worker) planRecordings(ctx context.Context, cfg *engine.Config, comp ivs.Composition, resumed bool,
	lost func(), log *slog.Logger) {
	id, _ := compositionID(comp.ARN)
	var once sync.Once
	for _, d := range cfg.Destinations {
		rec := d.Recording
		if rec == nil {
			continue
		}
		if resumed && comp.Run != nil {
			run := comp.Run.Recordings[d.Name]
			if rec.Rendition, rec.Resume = w.resumePoint(ctx, run, d.Name, rec, log); rec.Resume != nil &&
				rec.Thumbnails != nil {
				rec.Thumbnails.FirstIndex = run.NextThumbnail
			}
		}
		if rec.Rendition == "" {
			rec.Rendition = newRendition(cfg.Video, resumed)
		}
		if rec.Resume != nil {
			log.Info("continuing the recording", "destination", d.Name, "rendition", rec.Rendition,
				"segments", len(rec.Resume.Segments), "next", rec.Resume.Next)
		}
		l := &ledger{w: w, compID: id, destID: d.Name, rendition: rec.Rendition, uploads: rec.Upload != nil,
			lost: func() { once.Do(lost) }, log: log}
		rec.Hooks = l.hooks(rec.Dir)
	}
}
