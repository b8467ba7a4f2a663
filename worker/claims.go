package worker

import (
	"context"
	"sync"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
)

// held is the claim on a job this worker runs. JetStream delivers a job
// again when no heartbeat reached it within AckWait — a NATS node was lost
// and its consumer's leader moved, say — and may deliver it to this same
// worker. That worker must not run the job twice: both runs would carry
// its id, so the store's fencing of a lost claim could not tell them apart
// and both would record. The running one adopts the new delivery instead,
// and heartbeats and settles it from then on.
type held struct {
	Job jobs.Job // the same in every delivery

	mu      sync.Mutex
	c       *jobs.Claim
	running bool // its composition runs here (see runs)
}

// hold registers c as the claim of its job. When this worker runs the job
// already, that run adopts c and hold reports false: the caller runs nothing.
func (w *Worker) hold(c *jobs.Claim) (*held, bool) {
	w.heldMu.Lock()
	defer w.heldMu.Unlock()
	if h := w.held[c.Job.Name]; h != nil {
		h.mu.Lock()
		h.c = c
		h.mu.Unlock()
		return h, false
	}
	h := &held{Job: c.Job, c: c}
	w.held[c.Job.Name] = h
	return h, true
}

// release forgets h once its run settled it.
func (w *Worker) release(h *held) {
	w.heldMu.Lock()
	defer w.heldMu.Unlock()
	if w.held[h.Job.Name] == h {
		delete(w.held, h.Job.Name)
	}
}

// setRunning records whether h's composition runs here now.
func (h *held) setRunning(running bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running = running
}

// runs reports whether the job named name runs here: another worker that
// got it delivered again asks (jobs.Queue.AskOwner). A job waiting for
// capacity or being handed back does not run.
func (w *Worker) runs(name string) bool {
	w.heldMu.Lock()
	h := w.held[name]
	w.heldMu.Unlock()
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.running
}

// ownedElsewhere reports the worker that still runs comp when it is not
// this one: a delivery of a job whose owner is alive is left to that owner,
// whose heartbeats keep the job claimed.
func (w *Worker) ownedElsewhere(ctx context.Context, comp ivs.Composition, name string) (string, bool) {
	if comp.Run == nil || comp.Run.Worker == "" || comp.Run.Worker == w.cfg.ID || comp.Ended() {
		return "", false
	}
	return comp.Run.Worker, w.queue.AskOwner(ctx, comp.Run.Worker, name)
}

func (h *held) claim() *jobs.Claim {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.c
}

// Attempt is the delivery count of the latest delivery.
func (h *held) Attempt() int { return h.claim().Attempt }

// Heartbeat keeps the latest delivery claimed.
func (h *held) Heartbeat(ctx context.Context) { h.claim().Heartbeat(ctx) }

// Done settles the job: it ran to its end.
func (h *held) Done(ctx context.Context) error { return h.claim().Done(ctx) }

// Return hands the job to another worker after delay.
func (h *held) Return(ctx context.Context, delay time.Duration) error {
	return h.claim().Return(ctx, delay)
}

// GiveUp settles the job as never to be run.
func (h *held) GiveUp(ctx context.Context, reason string) error { return h.claim().GiveUp(ctx, reason) }
