package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the dead-letter record of exhausted jobs.
const (
	// ExhaustedStreamName keeps the server's max-deliveries advisories of
	// the workers' consumer: one per job that ran out of attempts.
	ExhaustedStreamName = "STAGEHAND_JOBS_EXHAUSTED"
	// ReaperConsumerName is the durable consumer ReapExhausted reads them with.
	ReaperConsumerName = "stagehand-reaper"
	// exhaustedSubject is where the server announces exhausted jobs.
	exhaustedSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamName + "." + ConsumerName
)

// reapBatch is how many advisories ReapExhausted asks for at a time.
const reapBatch = 64

// exhaustedMaxAge bounds how long an unreaped advisory is kept.
const exhaustedMaxAge = 30 * 24 * time.Hour

func openExhausted(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Consumer, error) {
	sc := jetstream.StreamConfig{
		Name:        ExhaustedStreamName,
		Description: "stagehand jobs that ran out of attempts (server advisories)",
		Subjects:    []string{exhaustedSubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      exhaustedMaxAge,
	}
	s, err := ensureStream(ctx, js, sc, cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("jobs: open stream %s: %w", ExhaustedStreamName, err)
	}
	c, err := ensureConsumer(ctx, s, jetstream.ConsumerConfig{
		Durable:     ReaperConsumerName,
		Description: "stagehand reaper of exhausted jobs",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     time.Minute,
		Replicas:    cfg.Replicas,
	}, cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("jobs: open consumer %s: %w", ReaperConsumerName, err)
	}
	return c, nil
}

// advisory is the part of the server's max-deliveries advisory we read.
type advisory struct {
	Stream    string `json:"stream"`
	Consumer  string `json:"consumer"`
	StreamSeq uint64 `json:"stream_seq"`
}

// ReapExhausted removes the jobs that ran out of attempts without being
// settled, typically because a worker died on the last one (or a poison
// job crashed a worker MaxDeliver times). JetStream stops delivering such
// a job but keeps it in the work-queue stream, and nobody has recorded the
// composition's end: ReapExhausted hands each one to handle, which should
// mark the composition FAILED, then deletes it. It returns how many it
// removed.
//
// The server announces each exhausted job with an advisory, which a
// stream of its own (ExhaustedStreamName) keeps, so none is missed while
// no reaper runs. A job is deleted only after handle returns nil; an error
// from handle stops the sweep and the job is retried by the next one.
// Several processes may reap at once, and a worker cut off from the server
// may still be running the composition, so handle must be idempotent and
// leave a composition that has already ended as it is. Run it now and then
// (e.g. every minute) from one or more control-plane processes.
func (q *Queue) ReapExhausted(ctx context.Context, handle func(context.Context, Job) error) (int, error) {
	n := 0
	for {
		batch, err := q.reaper.FetchNoWait(reapBatch)
		if err != nil {
			return n, fmt.Errorf("jobs: reap: fetch: %w", err)
		}
		got, reaped, err := q.reapBatch(ctx, batch, handle)
		n += reaped
		if err != nil {
			return n, err
		}
		if err := batch.Error(); err != nil {
			return n, fmt.Errorf("jobs: reap: fetch: %w", err)
		}
		if got < reapBatch {
			return n, nil
		}
	}
}

// reapBatch reaps the batch's advisories until one fails; the ones after
// it are handed back for the next sweep.
func (q *Queue) reapBatch(ctx context.Context, batch jetstream.MessageBatch,
	handle func(context.Context, Job) error) (got, reaped int, err error) {
	for m := range batch.Messages() {
		got++
		if err != nil {
			_ = m.Nak()
			continue
		}
		var ok bool
		if ok, err = q.reapOne(ctx, m, handle); err != nil {
			_ = m.Nak()
		} else if ok {
			reaped++
		}
	}
	return got, reaped, err
}

// reapOne handles one advisory; it reports whether a job was reaped.
func (q *Queue) reapOne(ctx context.Context, m jetstream.Msg, handle func(context.Context, Job) error) (bool, error) {
	var adv advisory
	if err := json.Unmarshal(m.Data(), &adv); err != nil || adv.Stream != StreamName || adv.StreamSeq == 0 {
		q.log.Warn("dropping a malformed max-deliveries advisory", "data", string(m.Data()), "error", err)
		return false, settle(ctx, m)
	}
	raw, err := q.stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, settle(ctx, m) // settled or reaped already
	}
	if err != nil {
		return false, fmt.Errorf("jobs: reap: get job %d: %w", adv.StreamSeq, err)
	}
	var job Job
	if err := json.Unmarshal(raw.Data, &job); err != nil || job.Name == "" {
		q.log.Warn("deleting a malformed exhausted job", "sequence", raw.Sequence, "subject", raw.Subject, "error", err)
	} else {
		if err := handle(ctx, job); err != nil {
			return false, fmt.Errorf("jobs: reap %s: %w", job.Name, err)
		}
		q.log.Warn("reaped a job that ran out of attempts", "job", job.Name)
	}
	if err := q.deleteJob(ctx, raw.Sequence); err != nil {
		return false, err
	}
	return true, settle(ctx, m)
}

func settle(ctx context.Context, m jetstream.Msg) error {
	if err := m.DoubleAck(ctx); err != nil {
		return fmt.Errorf("jobs: reap: ack advisory: %w", err)
	}
	return nil
}

// deleteJob deletes message seq of the job stream; one already gone is
// not an error, since another process may be reaping too.
func (q *Queue) deleteJob(ctx context.Context, seq uint64) error {
	err := q.stream.DeleteMsg(ctx, seq)
	if err == nil {
		return nil
	}
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		if _, gerr := q.stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return nil
		}
	}
	return fmt.Errorf("jobs: reap: delete job %d: %w", seq, err)
}
