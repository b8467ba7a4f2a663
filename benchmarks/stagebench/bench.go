package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/stagehand-rt/stagehand/loadtest"
)

// bench is one run: its settings, working directory and processes.
type bench struct {
	s       settings
	dir     string
	cascade bool // serve has --stage-role: edges relay from the origin
	seq     int
	nodes   []*node  // every node started, stopped at the end
	machine []sample // the machine's CPU during the last load
}

func newBench(s settings) (*bench, error) {
	cascade, err := hasFlag(s.stagehand, "stage-role")
	if err != nil {
		return nil, fmt.Errorf("stagehand serve -h: %w", err)
	}
	dir, err := os.MkdirTemp("", "stagebench-")
	if err != nil {
		return nil, err
	}
	return &bench{s: s, dir: dir, cascade: cascade}, nil
}

// close stops every process; the logs and data stay after a failure (or
// a load run's failures) or with STAGEBENCH_KEEP=1.
func (b *bench) close(failed bool) {
	for _, n := range b.nodes {
		n.stop()
	}
	if failed || b.s.keep {
		fmt.Fprintf(os.Stderr, "stagebench: logs and data kept in %s\n", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}

// results are the three scenarios' figures.
type results struct {
	s                    settings
	cascade              bool
	node, casc, audience *scenario // audience nil when skipped
}

func (b *bench) all(ctx context.Context) (*results, error) {
	r := &results{s: b.s, cascade: b.cascade}
	var err error
	if r.node, err = b.nodeScenario(ctx); err != nil {
		return nil, err
	}
	if r.casc, err = b.cascadeScenario(ctx); err != nil {
		return nil, err
	}
	if !b.s.skipRamp {
		if r.audience, err = b.audienceScenario(ctx); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (b *bench) say(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "stagebench: "+format+"\n", a...)
}

// nodeScenario: one node, one publisher, S subscribers.
func (b *bench) nodeScenario(ctx context.Context) (*scenario, error) {
	b.say("node: 1 serve, 1 publisher, %d subscribers for %d s", b.s.subscribers, b.s.seconds)
	nodes, err := b.cluster(ctx, 1, false)
	defer stopNodes(nodes)
	if err != nil {
		return nil, err
	}
	rep, err := b.load(ctx, "node", nodes[0], nodes, b.fixedArgs(b.s.subscribers)...)
	if err != nil {
		return nil, err
	}
	return newScenario("node", rep, rep.Ramp.Steps[0], nodes, b.machine)
}

// cascadeScenario: an origin and 3 edges, 3×S subscribers.
func (b *bench) cascadeScenario(ctx context.Context) (*scenario, error) {
	subs := 3 * b.s.subscribers
	b.say("cascade: 4 serves (cascade: %v), 1 publisher, %d subscribers for %d s", b.cascade, subs, b.s.seconds)
	nodes, err := b.cluster(ctx, 4, true)
	defer stopNodes(nodes)
	if err != nil {
		return nil, err
	}
	rep, err := b.load(ctx, "cascade", nodes[0], nodes, b.fixedArgs(subs)...)
	if err != nil {
		return nil, err
	}
	return newScenario("cascade", rep, rep.Ramp.Steps[0], nodes, b.machine)
}

// audienceScenario ramps subscribers on 3 nodes until a threshold is
// crossed; its figures are the last step that held.
func (b *bench) audienceScenario(ctx context.Context) (*scenario, error) {
	b.say("largest audience: 3 serves, +%d subscribers every %d s until loss > 1 %% or p95 > 200 ms",
		b.s.rampStep, b.s.rampEvery)
	nodes, err := b.cluster(ctx, 3, true)
	defer stopNodes(nodes)
	if err != nil {
		return nil, err
	}
	args := []string{"--ramp-step", strconv.Itoa(b.s.rampStep), "--ramp-every", strconv.Itoa(b.s.rampEvery) + "s"}
	if b.s.rampMax > 0 {
		args = append(args, "--subscribers", strconv.Itoa(b.s.rampMax))
	}
	rep, err := b.load(ctx, "audience", nodes[0], nodes, args...)
	if err != nil {
		return nil, err
	}
	st, name := heldStep(rep.Ramp)
	return newScenario(name, rep, st, nodes, b.machine)
}

// heldStep is the last step that held, or the first when none did, and
// the scenario's name for it.
func heldStep(r *loadtest.RampResult) (loadtest.RampStep, string) {
	held, name := r.Steps[0], "audience (first step, crossed)"
	for _, st := range r.Steps {
		if st.Held {
			held, name = st, "audience (last step held)"
		}
	}
	return held, name
}

// cluster starts n nodes one after the other: one alone, or a stage
// cluster on the first's NATS (origin and edges with the cascade). It
// returns the nodes started, also on failure, for the caller to stop.
func (b *bench) cluster(ctx context.Context, n int, cluster bool) ([]*node, error) {
	var nodes []*node
	for i := range n {
		spec := nodeSpec{name: fmt.Sprintf("node %d", i+1), role: "member", cluster: cluster}
		switch {
		case !cluster:
			spec.name, spec.role = "node", "alone"
		case i == 0:
			spec.role = "stage URL"
		default:
			spec.first = nodes[0]
		}
		if cluster && b.cascade {
			spec.role = map[bool]string{true: "origin", false: "edge"}[i == 0]
			spec.stageRole = spec.role
		}
		nd, err := b.startNode(ctx, spec)
		if nd != nil {
			nodes = append(nodes, nd)
		}
		if err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}
