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
	// Full says the ramp ended with the stages full (10,000 subscribers
	// each): give more stages, and publishers, to go on.
	Full bool `json:"stagesFull,omitempty"`
}

// RampStep is one step's figures, over its measuring window.
type RampStep struct {
	Subscribers  int     `json:"subscribers"`
	LatencyP95Ms float64 `json:"latencyP95Ms"`
	LossPercent  float64 `json:"lossPercent"`
	Failures     int     `json:"failures"`
	// Disconnected are the subscribers whose connection ended during the
	// step: their packets stop, which loss does not count.
	Disconnected int  `json:"disconnected"`
	Held         bool `json:"held"`
	// ServerCores and ToolCores are the CPU each used over the window
	// (ServerCores 0 when the metrics are not read).
	ServerCores float64 `json:"serverCpuCores"`
	ToolCores   float64 `json:"toolCpuCores"`
	// Packets are the RTP packets the subscribers received over the
	// window. JoinStart is when the step's joins began, Start and End the
	// window (after the joins): other processes' figures (each node of a
	// stage cluster) can be read over the same window.
	Packets   int64     `json:"packetsReceived"`
	JoinStart time.Time `json:"joinStart"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
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
		if n = min(n, c.capacity()-r.started()); n <= 0 {
			res.Full = true
			break
		}
		fails, joinStart := r.failureTotal(), time.Now()
		r.joinSubscribers(ctx, n)
		r.markAll()
		gone := r.disconnectedSubscribers()
		server0, serverErr := r.scrape(ctx)
		cpu0, t0 := selfCPU(), time.Now()
		sleep(ctx, c.Ramp.Every)
		if ctx.Err() != nil {
			break
		}
		st := r.step()
		st.JoinStart, st.Start, st.End = joinStart, t0, time.Now()
		wall := st.End.Sub(t0).Seconds()
		st.ToolCores = (selfCPU() - cpu0).Seconds() / wall
		if server1, err := r.scrape(ctx); err == nil && serverErr == nil {
			st.ServerCores = (server1.cpuSeconds - server0.cpuSeconds) / server1.at.Sub(server0.at).Seconds()
		}
		st.Failures = r.failureTotal() - fails
		st.Disconnected = r.disconnectedSubscribers() - gone
		st.Held = st.LatencyP95Ms <= float64(c.Ramp.MaxLatency.Milliseconds()) &&
			st.LossPercent <= 100*c.Ramp.MaxLoss && st.Failures == 0 && st.Disconnected == 0
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

// disconnectedSubscribers counts the subscribers a connection of which
// has ended.
func (r *runner) disconnectedSubscribers() int {
	n := 0
	for _, s := range r.subscribers() {
		if s.disconnected() {
			n++
		}
	}
	return n
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
	st := RampStep{Subscribers: len(subs), LatencyP95Ms: float64(percentile(lat, 95)) / float64(time.Millisecond),
		Packets: received}
	if expected > 0 {
		st.LossPercent = 100 * float64(max(0, expected-received)) / float64(expected)
	}
	return st
}

func (res *RampResult) write(w io.Writer) {
	fmt.Fprintf(w, "\nramp (p95 latency and loss over each step's window)\n")
	fmt.Fprintf(w, "%12s %16s %10s %9s %13s %12s %10s\n", "subscribers", "latency p95 ms", "loss %", "failures",
		"disconnected", "server cores", "tool cores")
	for _, s := range res.Steps {
		mark := "held"
		if !s.Held {
			mark = "CROSSED"
		}
		fmt.Fprintf(w, "%12d %16.0f %10.2f %9d %13d %12.2f %10.2f  %s\n", s.Subscribers, s.LatencyP95Ms,
			s.LossPercent, s.Failures, s.Disconnected, s.ServerCores, s.ToolCores, mark)
	}
	switch {
	case res.FirstFailed > 0:
		fmt.Fprintf(w, "held at %d subscribers; crossed a threshold at %d\n", res.LastHeld, res.FirstFailed)
	case res.Full:
		fmt.Fprintf(w, "held at %d subscribers, when the stages were full (%d subscribers each): "+
			"give more --stages and --publishers\n", res.LastHeld, MaxSubscribersPerStage)
	default:
		fmt.Fprintf(w, "held at %d subscribers; no step crossed a threshold\n", res.LastHeld)
	}
}
