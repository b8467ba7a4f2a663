package loadtest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// RampResult is where a ramp stopped holding.
type RampResult struct {
	Steps []RampStep `json:"steps"`
	// LastHeld is the subscribers of the last step within the thresholds
	// (0 if none was); FirstFailed those of the first that was not (0 if
	// the ramp ended first).
	LastHeld    int `json:"lastHeldSubscribers"`
	FirstFailed int `json:"firstFailedSubscribers"`
}

// RampStep is one step's figures, over its measuring window.
type RampStep struct {
	Subscribers  int     `json:"subscribers"`
	LatencyP95Ms float64 `json:"latencyP95Ms"`
	LossPercent  float64 `json:"lossPercent"`
	Failures     int     `json:"failures"`
	Held         bool    `json:"held"`
}

// ramp adds subscribers a step at a time and measures each step over
// Ramp.Every after its joins, until a step crosses a threshold, the
// subscriber ceiling or Duration is reached, or ctx ends.
func (r *runner) ramp(ctx context.Context, start time.Time) *RampResult {
	res := &RampResult{}
	c := r.cfg
	for ctx.Err() == nil {
		n := c.Ramp.Step
		if c.Subscribers > 0 {
			n = min(n, c.Subscribers-r.started())
		}
		fails := r.failureTotal()
		r.joinSubscribers(ctx, n)
		r.markAll()
		sleep(ctx, c.Ramp.Every)
		if ctx.Err() != nil {
			break
		}
		st := r.step()
		st.Failures = r.failureTotal() - fails
		st.Held = st.LatencyP95Ms <= float64(c.Ramp.MaxLatency.Milliseconds()) &&
			st.LossPercent <= 100*c.Ramp.MaxLoss && st.Failures == 0
		res.Steps = append(res.Steps, st)
		if !st.Held {
			res.FirstFailed = st.Subscribers
			break
		}
		res.LastHeld = st.Subscribers
		if c.Subscribers > 0 && r.started() >= c.Subscribers || c.Duration > 0 && time.Since(start) >= c.Duration {
			break
		}
	}
	return res
}

func (r *runner) started() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.subCount
}

func (r *runner) failureTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.failures {
		n += c
	}
	return n
}

func (r *runner) markAll() {
	for _, s := range r.subscribers() {
		for _, t := range s.snapshotTracks() {
			t.mark()
		}
	}
}

// step is the figures since markAll.
func (r *runner) step() RampStep {
	var lat []time.Duration
	var expected, received int64
	subs := r.subscribers()
	for _, s := range subs {
		for _, t := range s.snapshotTracks() {
			l, e, rc := t.mark()
			lat = append(lat, l...)
			expected += e
			received += rc
		}
	}
	slices.Sort(lat)
	st := RampStep{Subscribers: len(subs), LatencyP95Ms: float64(percentile(lat, 95)) / float64(time.Millisecond)}
	if expected > 0 {
		st.LossPercent = 100 * float64(max(0, expected-received)) / float64(expected)
	}
	return st
}

func (res *RampResult) write(w io.Writer) {
	fmt.Fprintf(w, "\nramp (p95 latency and loss over each step's window)\n")
	fmt.Fprintf(w, "%12s %16s %10s %9s\n", "subscribers", "latency p95 ms", "loss %", "failures")
	for _, s := range res.Steps {
		mark := "held"
		if !s.Held {
			mark = "CROSSED"
		}
		fmt.Fprintf(w, "%12d %16.0f %10.2f %9d  %s\n", s.Subscribers, s.LatencyP95Ms, s.LossPercent, s.Failures, mark)
	}
	switch {
	case res.FirstFailed > 0:
		fmt.Fprintf(w, "held at %d subscribers; crossed a threshold at %d\n", res.LastHeld, res.FirstFailed)
	default:
		fmt.Fprintf(w, "held at %d subscribers; no step crossed a threshold\n", res.LastHeld)
	}
}
