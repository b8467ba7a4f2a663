// The composition's state in the store: ACTIVE once the composite goes
// out, the destinations' states as they change, STOPPED or FAILED at the end.

package worker

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/sink"
)

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

// allFailed reports whether every destination is FAILED.
func allFailed(st []sink.Status) bool {
	for _, s := range st {
		if s.State != sink.StateFailed {
			return false
		}
	}
	return len(st) > 0
}
