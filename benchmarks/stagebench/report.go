package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-rt/stagehand/loadtest"
)

// scenario is one load run and each node's figures over its window, and
// the CPU the whole machine was busy with meanwhile (cores).
type scenario struct {
	name  string
	rep   *loadtest.Report
	step  loadtest.RampStep // the measured window
	nodes []nodeFig
	busy  float64
}

// nodeFig is one node over the window: peak subscriber peers and open
// peer connections, whether it had a stage room, CPU, RSS at the end and
// its growth since the joins began, and packets its fan-out dropped.
type nodeFig struct {
	name, role       string
	subs, pcs        int
	hosts            bool
	cores, cpu       float64
	rssMB, rssGrowMB float64
	dropped          float64
}

func newScenario(name string, rep *loadtest.Report, st loadtest.RampStep, nodes []*node,
	machine []sample) (*scenario, error) {
	sc := &scenario{name: name, rep: rep, step: st}
	cpu := func(s sample) float64 { return s.cpu }
	b0, ok0 := at(machine, st.Start, cpu)
	b1, ok1 := at(machine, st.End, cpu)
	if ok0 && ok1 {
		sc.busy = (b1 - b0) / st.End.Sub(st.Start).Seconds()
	}
	for _, n := range nodes {
		f, err := figures(n, st)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", name, n.name, err)
		}
		sc.nodes = append(sc.nodes, f)
	}
	return sc, nil
}

func figures(n *node, st loadtest.RampStep) (nodeFig, error) {
	cpu := func(s sample) float64 { return s.cpu }
	rss := func(s sample) float64 { return s.rss }
	c0, ok0 := at(n.samples, st.Start, cpu)
	c1, ok1 := at(n.samples, st.End, cpu)
	r0, ok2 := at(n.samples, st.JoinStart, rss)
	r1, ok3 := at(n.samples, st.End, rss)
	if !ok0 || !ok1 || !ok2 || !ok3 {
		return nodeFig{}, fmt.Errorf("%d samples do not cover the window %s–%s", len(n.samples),
			st.JoinStart.Format(time.TimeOnly), st.End.Format(time.TimeOnly))
	}
	f := nodeFig{name: n.name, role: n.role, cpu: c1 - c0, cores: (c1 - c0) / st.End.Sub(st.Start).Seconds(),
		rssMB: r1 / 1e6, rssGrowMB: (r1 - r0) / 1e6}
	read := scraped(n.samples)
	f.subs = int(peak(read, st.Start, st.End, func(s sample) float64 { return s.subs }))
	f.pcs = int(peak(read, st.Start, st.End, func(s sample) float64 { return s.pcs }))
	f.hosts = peak(read, st.Start, st.End, func(s sample) float64 { return s.rooms }) > 0
	d0, ok0 := at(read, st.Start, func(s sample) float64 { return s.dropped })
	d1, ok1 := at(read, st.End, func(s sample) float64 { return s.dropped })
	if ok0 && ok1 {
		f.dropped = d1 - d0
	}
	return f, nil
}

// scraped are the samples whose /metrics were read.
func scraped(samples []sample) []sample {
	var out []sample
	for _, s := range samples {
		if s.subs >= 0 {
			out = append(out, s)
		}
	}
	return out
}

// elsewhere is the cores the machine was busy with besides the nodes and
// the load tool: other processes competing with them.
func (sc *scenario) elsewhere() float64 {
	e := sc.busy - sc.step.ToolCores
	for _, n := range sc.nodes {
		e -= n.cores
	}
	return max(e, 0)
}

// host is the node the subscribers reached the stage through: the origin
// with the cascade, else the node hosting the stage with the most
// subscribers.
func (sc *scenario) host() nodeFig {
	best := sc.nodes[0]
	for _, n := range sc.nodes {
		if n.role == "origin" {
			return n
		}
		if n.hosts && (!best.hosts || n.subs > best.subs) {
			best = n
		}
	}
	return best
}

// serving is how many nodes served subscribers: the edges with some with
// the cascade, else every node with some.
func (sc *scenario) serving() int {
	k := 0
	for _, n := range sc.nodes {
		if n.subs > 0 && n.role != "origin" {
			k++
		}
	}
	return max(k, 1)
}

func (r *results) write(w io.Writer) error {
	var b strings.Builder
	r.table(&b)
	r.summary(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *results) scenarios() []*scenario {
	out := []*scenario{r.node, r.casc}
	if r.audience != nil {
		out = append(out, r.audience)
	}
	return out
}

func (r *results) table(b *strings.Builder) {
	fmt.Fprintf(b, "\n| scenario | subscribers (joined) | window s | packets received | loss %% | p95 ms | "+
		"failures | disconnected | load tool cores | machine busy cores (elsewhere) |\n"+
		"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, sc := range r.scenarios() {
		st := sc.step
		fmt.Fprintf(b, "| %s | %d (%d) | %.1f | %d | %.2f | %.0f | %d | %d | %.2f | %.2f (%.2f) |\n", sc.name,
			st.Subscribers, sc.rep.Subscribers, st.End.Sub(st.Start).Seconds(), st.Packets, st.LossPercent,
			st.LatencyP95Ms, st.Failures, st.Disconnected, st.ToolCores, sc.busy, sc.elsewhere())
	}
	fmt.Fprintf(b, "\n| scenario | process | role | subscriber peers | open PCs | stage room | CPU cores | CPU-s | "+
		"packets forwarded per CPU-s | RSS MB | RSS growth MB | fan-out drops |\n"+
		"| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, sc := range r.scenarios() {
		total := 0
		for _, n := range sc.nodes {
			total += n.subs
		}
		for _, n := range sc.nodes {
			// Every subscriber receives the same stream: a node forwarded
			// its subscribers' share of the packets (an origin's are its
			// relays to the edges).
			pps := "-"
			if n.cpu > 0 && n.subs > 0 {
				pps = fmt.Sprintf("%.0f", float64(sc.step.Packets)*float64(n.subs)/float64(total)/n.cpu)
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %.2f | %.1f | %s | %.0f | %.1f | %.0f |\n", sc.name,
				n.name, n.role, count(n.subs), count(n.pcs), yesNo(n.hosts), n.cores, n.cpu, pps, n.rssMB, n.rssGrowMB, n.dropped)
		}
	}
	b.WriteString("\n")
}

func (r *results) summary(b *strings.Builder) {
	nd := r.node.nodes[0]
	fmt.Fprintf(b, "node: %.0f packets per CPU-second, %.2f MB per subscriber\n",
		float64(r.node.step.Packets)/nd.cpu, nd.rssGrowMB/float64(max(1, r.node.rep.Subscribers)))
	h := r.casc.host()
	fmt.Fprintf(b, "cascade: origin %.2f cores with 3 edges x %d subscribers vs %.2f cores with %d subscribers direct\n",
		h.cores, r.s.subscribers, nd.cores, r.s.subscribers)
	if !r.cascade {
		fmt.Fprintf(b, "note: serve has no --stage-role flag, so no cascade: the 4 nodes are a plain stage cluster "+
			"and every subscriber is redirected to the node hosting the stage (%s, %s subscriber peers); "+
			"the cascade figure is that redirect-to-origin baseline\n", h.name, count(h.subs))
	}
	if a := r.audience; a != nil {
		r.audienceLine(b, a)
	}
	r.failures(b)
	r.contention(b)
}

// failures notes each scenario's failures, the most frequent first.
func (r *results) failures(b *strings.Builder) {
	for _, sc := range r.scenarios() {
		fs := slices.Clone(sc.rep.Failures)
		if len(fs) == 0 {
			continue
		}
		slices.SortStableFunc(fs, func(x, y loadtest.Failure) int { return y.Count - x.Count })
		fmt.Fprintf(b, "note: %s had failures (the load tool's, whole run):", sc.name)
		for _, f := range fs[:min(len(fs), 4)] {
			fmt.Fprintf(b, " %d × %s;", f.Count, shorten(f.Error, 110))
		}
		b.WriteString("\n")
	}
}

// hadFailures says whether a load run had failures (nil has none).
func (r *results) hadFailures() bool {
	if r == nil {
		return false
	}
	for _, sc := range r.scenarios() {
		if len(sc.rep.Failures) > 0 {
			return true
		}
	}
	return false
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// contention notes other processes that competed with the measured ones.
func (r *results) contention(b *strings.Builder) {
	worst := 0.0
	for _, sc := range r.scenarios() {
		worst = max(worst, sc.elsewhere())
	}
	fmt.Fprintf(b, "machine: %d CPUs; other processes used up to %.2f cores during the windows", runtime.NumCPU(), worst)
	if worst > 0.1*float64(runtime.NumCPU()) {
		b.WriteString(" (contended: the latency and the largest audience understate an idle machine's)")
	}
	b.WriteString("\n")
}

func (r *results) audienceLine(b *strings.Builder, a *scenario) {
	ramp := a.rep.Ramp
	k := a.serving()
	fmt.Fprintf(b, "largest audience: %d subscribers on 3 nodes before loss > 1 %% or p95 > 200 ms (per node: %d)\n",
		ramp.LastHeld, ramp.LastHeld/k)
	switch {
	case ramp.FirstFailed > 0:
		last := ramp.Steps[len(ramp.Steps)-1]
		fmt.Fprintf(b, "note: the ramp crossed at %d subscribers (loss %.2f %%, p95 %.0f ms, %d failures, "+
			"%d disconnected); %d node(s) served subscribers\n", ramp.FirstFailed, last.LossPercent,
			last.LatencyP95Ms, last.Failures, last.Disconnected, k)
	default:
		fmt.Fprintf(b, "note: no step crossed a threshold (the ramp reached its ceiling): the audience is at least "+
			"this\n")
	}
}

// count is n, or "?" when no /metrics answered during the window.
func count(n int) string {
	if n < 0 {
		return "?"
	}
	return strconv.Itoa(n)
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}
