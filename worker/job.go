package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/store"
)

var errStopRequested = errors.New("stop requested before the composition started")

// runJob runs the claimed composition to its end and settles the claim;
// a job this worker runs already goes on with the new delivery (see held).
func (w *Worker) runJob(ctx context.Context, claim *jobs.Claim) {
	c, first := w.hold(claim)
	if !first {
		w.log.Warn("job delivered again while it runs here (its heartbeats did not reach NATS in time); "+
			"the run goes on with the new delivery", "job", claim.Job.Name, "attempt", claim.Attempt)
		return
	}
	defer w.release(c)
	if c.Job.Kind == jobs.KindParticipantRecording {
		w.runParticipantJob(ctx, c)
		return
	}
	arn := c.Job.Name
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
	if owner, ok := w.ownedElsewhere(ctx, w.current(ctx, id), c.Job.Name); ok {
		log.Warn("job delivered again while another worker runs it (its heartbeats did not reach NATS in time); "+
			"left to that worker", "owner", owner, "attempt", c.Attempt())
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
	// Heartbeats go on until the run has ended, through a shutdown too:
	// a run winding down (last segment, uploads, destinations closing) must
	// not lose its claim, or the job is delivered again meanwhile.
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(hbCtx, c) })
	log.Info("composition starting")
	c.setRunning(true)
	runErr := w.compose(ctx, comp, log)
	c.setRunning(false)
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
		w.giveBack(context.WithoutCancel(ctx), id, log)
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
func (w *Worker) reserve(ctx context.Context, c *held, need float64, log *slog.Logger) bool {
	if w.budget.take(need) {
		return true
	}
	var err error
	switch {
	case c.Attempt() <= 2:
		log.Info("over capacity; returning the job", "cost", need, "attempt", c.Attempt())
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
	cfg, err := w.settings(ctx, comp)
	if err != nil {
		return cost(encoder.VideoConfig{})
	}
	return cost(cfg.Video)
}

// current is composition id as stored; its zero value when it cannot be
// read now (take reads it again).
func (w *Worker) current(ctx context.Context, id string) ivs.Composition {
	comp, _ := w.store.Compositions.Get(ctx, id)
	return comp
}

// giveBack clears this worker from a composition it hands off, so that the
// worker the job reaches next takes it at once rather than asking this
// one, which is gone by then (jobs.Queue.AskOwner waits for it).
func (w *Worker) giveBack(ctx context.Context, id string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()
	_, err := w.store.Compositions.Update(ctx, id, func(cp *ivs.Composition) error {
		if cp.Run == nil || cp.Run.Worker != w.cfg.ID {
			return errLostClaim // taken over meanwhile: not ours to clear
		}
		cp.Run.Worker = ""
		return nil
	})
	if err != nil && !errors.Is(err, errLostClaim) {
		log.Warn("clear the composition's worker before the hand-off", "error", err)
	}
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
func (w *Worker) waitFor(ctx context.Context, c *held, need float64) bool {
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

func (w *Worker) heartbeat(ctx context.Context, c *held) {
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
