package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/store"
)

// Reap ends, every interval until ctx ends, the jobs that ran out of
// deliveries without being settled (a poison job that crashed every worker
// it reached, or a job whose last worker died): its composition or
// participant recording is FAILED with the reason, rather than left
// ACTIVE with nobody running it. Control-plane processes run it (serve
// does); several may.
func Reap(ctx context.Context, st *store.Store, q *jobs.Queue, interval time.Duration, log *slog.Logger) {
	log = log.With("component", "reaper")
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := q.ReapExhausted(ctx, func(ctx context.Context, j jobs.Job) error { return failExhausted(ctx, st, j, log) })
		if err != nil && ctx.Err() == nil {
			log.Warn("reaping exhausted jobs", "error", err)
		}
		if n > 0 {
			log.Warn("jobs ran out of attempts; marked FAILED", "jobs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errExhausted is the reason an exhausted job's work is FAILED.
var errExhausted = errors.New(
	"no worker finished the job within its attempts (each worker that ran it died or lost it)")

func failExhausted(ctx context.Context, st *store.Store, j jobs.Job, log *slog.Logger) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	var err error
	if j.Kind == jobs.KindParticipantRecording && j.Participant != nil {
		_, err = st.Recordings.Update(ctx, j.Participant.Key(), func(r *ivs.ParticipantRecording) error {
			if r.State == ivs.RecordingStopped || r.State == ivs.RecordingFailed {
				return errEnded
			}
			r.State, r.EndTime, r.Reason = ivs.RecordingFailed, &now, errExhausted.Error()
			return nil
		})
	} else {
		var id string
		if id, err = compositionID(j.Name); err != nil {
			log.Warn("exhausted job names no composition", "job", j.Name)
			return nil
		}
		_, err = st.Compositions.Update(ctx, id, func(cp *ivs.Composition) error {
			if cp.Ended() {
				return errEnded
			}
			cp.State, cp.EndTime = ivs.CompositionFailed, &now
			for i := range cp.Destinations {
				if d := &cp.Destinations[i]; d.State != ivs.DestinationStopped {
					d.State, d.EndTime = ivs.DestinationFailed, &now
				}
			}
			if cp.Run == nil {
				cp.Run = &ivs.CompositionRun{}
			}
			cp.Run.Reason = errExhausted.Error()
			return nil
		})
	}
	if errors.Is(err, errEnded) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fail %s: %w", j.Name, err)
	}
	log.Warn("job ran out of attempts; FAILED", "job", j.Name)
	return nil
}
