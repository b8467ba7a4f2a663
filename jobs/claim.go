package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pullWindow bounds one pull request. Claim renews its pull every window,
// so a pull the server lost (restart, leader change) is not waited on
// forever; pulls of 10 s or more also carry the client's idle heartbeat,
// which reports a dead server.
const pullWindow = 30 * time.Second

// flushTimeout bounds the wait for the server to receive a settlement when
// the caller's context has no deadline.
const flushTimeout = 5 * time.Second

// Claim is a job a worker holds. The worker heartbeats while the
// composition runs and settles the claim once: Done, Return or GiveUp.
type Claim struct {
	// Job is the claimed job.
	Job Job
	// Attempt is the 1-based delivery count of the job.
	Attempt int

	q   *Queue
	msg jetstream.Msg
}

// Claim blocks until one job is available, and claims it, or until ctx
// ends. A worker calls it only when it has room for one more composition:
// it asks the server for exactly one job. Messages that are not a Job are
// given up (never delivered again) with a log line, and Claim waits for
// the next job. Claim returns an error at once when the connection is
// closed, or closes while it waits; other errors (a lost server) are
// returned too, and the caller retries after a pause.
func (q *Queue) Claim(ctx context.Context) (*Claim, error) {
	closed := q.nc.StatusChanged(nats.CLOSED)
	defer q.nc.RemoveStatusListener(closed)
	for {
		msg, err := q.next(ctx, closed)
		if err != nil {
			return nil, err
		}
		c, err := q.newClaim(msg)
		if err != nil {
			q.discard(msg, err)
			continue
		}
		if err := ctx.Err(); err != nil {
			// The job came as ctx ended: hand it on rather than hold it
			// until AckWait lapses.
			_ = msg.Nak()
			return nil, fmt.Errorf("jobs: claim: %w", err)
		}
		return c, nil
	}
}

// next pulls until one message comes.
func (q *Queue) next(ctx context.Context, closed <-chan nats.Status) (jetstream.Msg, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("jobs: claim: %w", err)
		}
		if q.nc.IsClosed() {
			return nil, fmt.Errorf("jobs: claim: %w", nats.ErrConnectionClosed)
		}
		msg, err := q.pull(ctx, closed)
		if msg != nil || err != nil {
			return msg, err
		}
	}
}

// pull sends one pull request for one message and waits for it; it
// returns neither message nor error when the pull window lapsed empty.
func (q *Queue) pull(ctx context.Context, closed <-chan nats.Status) (jetstream.Msg, error) {
	pctx, cancel := context.WithTimeout(ctx, pullWindow)
	defer cancel() // also ends the fetch's goroutine
	batch, err := q.cons.Fetch(1, jetstream.FetchContext(pctx))
	if err != nil {
		if d, ok := ctx.Deadline(); ok && time.Until(d) <= 0 {
			<-ctx.Done() // FetchContext refuses a deadline that has passed
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("jobs: claim: %w", ctx.Err())
		}
		return nil, fmt.Errorf("jobs: claim: fetch: %w", err)
	}
	select {
	case msg, ok := <-batch.Messages():
		if ok {
			return msg, nil
		}
	case <-closed:
		return nil, fmt.Errorf("jobs: claim: %w", nats.ErrConnectionClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("jobs: claim: %w", err)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("jobs: claim: fetch: %w", err)
	}
	return nil, nil
}

func (q *Queue) newClaim(msg jetstream.Msg) (*Claim, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var job Job
	if err := json.Unmarshal(msg.Data(), &job); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if job.Name == "" {
		return nil, errors.New("no compositionArn")
	}
	return &Claim{Job: job, Attempt: int(md.NumDelivered), q: q, msg: msg}, nil
}

// discard gives up a message that is not a job, so it does not block the
// queue or come back.
func (q *Queue) discard(msg jetstream.Msg, cause error) {
	log := q.log.With("subject", msg.Subject(), "error", cause)
	if err := msg.TermWithReason("malformed job: " + cause.Error()); err != nil {
		log.Error("cannot give up a malformed job; it will be redelivered", "termError", err)
		return
	}
	log.Warn("gave up a malformed job")
}

// LastAttempt reports whether this is the job's last delivery: if the
// worker cannot run it, it should mark the composition FAILED and settle
// the claim rather than Return it, since it will not be delivered again.
func (c *Claim) LastAttempt() bool { return c.Attempt >= c.q.cfg.MaxDeliver }

// Heartbeat tells the server every AckWait/3 that the job is still being
// worked on, so it is not delivered again while the composition runs. It
// returns when ctx ends or once the claim is settled; the caller runs it
// in a goroutine it owns and cancels ctx when the composition ends.
func (c *Claim) Heartbeat(ctx context.Context) {
	t := time.NewTicker(c.q.cfg.AckWait / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := c.msg.InProgress()
		switch {
		case errors.Is(err, jetstream.ErrMsgAlreadyAckd):
			return
		case err != nil && !failing:
			c.q.log.Warn("heartbeat failed; the job is redelivered if this lasts past AckWait",
				"job", c.Job.Name, "error", err)
		case err == nil && failing:
			c.q.log.Info("heartbeat recovered", "job", c.Job.Name)
		}
		failing = err != nil
	}
}

// Done settles the claim for good: the composition ended (it stopped, or
// failed with its reason recorded in the store). The job leaves the queue.
// Done waits for the server to confirm.
func (c *Claim) Done(ctx context.Context) error {
	if err := c.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("jobs: done %s: %w", c.Job.Name, err)
	}
	return nil
}

// Return hands the job back: this worker cannot start it now. It is
// delivered again, to any worker, after delay (at once if delay is 0),
// unless this was the last attempt.
func (c *Claim) Return(ctx context.Context, delay time.Duration) error {
	if err := c.msg.NakWithDelay(delay); err != nil {
		return fmt.Errorf("jobs: return %s: %w", c.Job.Name, err)
	}
	if err := c.q.flush(ctx); err != nil {
		return fmt.Errorf("jobs: return %s: %w", c.Job.Name, err)
	}
	return nil
}

// GiveUp settles the claim of a poison job: it is removed and never
// delivered again. reason goes to the server's termination advisory and
// the log.
func (c *Claim) GiveUp(ctx context.Context, reason string) error {
	if err := c.msg.TermWithReason(reason); err != nil {
		return fmt.Errorf("jobs: give up %s: %w", c.Job.Name, err)
	}
	if err := c.q.flush(ctx); err != nil {
		return fmt.Errorf("jobs: give up %s: %w", c.Job.Name, err)
	}
	c.q.log.Warn("gave up a job", "job", c.Job.Name, "attempt", c.Attempt, "reason", reason)
	return nil
}

// flush waits until the server has received what was sent before it.
func (q *Queue) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, flushTimeout)
		defer cancel()
	}
	return q.nc.FlushWithContext(ctx)
}
