package loadtest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is a run's outcome. Durations are in milliseconds, rates in
// kbit/s, as the JSON shows them.
type Report struct {
	Stages         int     `json:"stages"`
	Publishers     int     `json:"publishers"`
	Subscribers    int     `json:"subscribers"` // joined
	Video          string  `json:"video"`       // codec WxH@fps
	DurationSec    float64 `json:"durationSeconds"`
	PublisherJoin  Dist    `json:"publisherJoinMs"`
	SubscriberJoin Dist    `json:"subscriberJoinMs"` // per WHEP connection
	// JoinsPerSecond is subscribers joined (token minted, a WHEP connection
	// to each publisher of the stage) per second spent joining them.
	JoinsPerSecond float64 `json:"subscriberJoinsPerSecond"`
	// PublisherKbps is what one publisher sends (payload, video and audio);
	// ExpectedKbps what a subscriber of its stage should receive.
	PublisherKbps float64 `json:"publisherKbps"`
	ExpectedKbps  float64 `json:"expectedKbpsPerSubscriber"`
	// ReceivedKbps is per subscriber, over its time joined.
	ReceivedKbps Dist        `json:"receivedKbpsPerSubscriber"`
	Loss         Loss        `json:"loss"`
	Latency      Dist        `json:"latencyMs"` // per video frame, first packet
	Freezes      int         `json:"freezes"`
	Frozen       int         `json:"subscribersWithFreezes"`
	Failures     []Failure   `json:"failures"`
	Server       Server      `json:"server"`
	Tool         Tool        `json:"tool"`
	Ramp         *RampResult `json:"ramp,omitempty"`

	joinConcurrency int
}

// Dist is a distribution's summary.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Loss is the packets lost over those expected, all subscribers, and the
// worst subscriber's share.
type Loss struct {
	Percent      float64 `json:"percent"`
	WorstPercent float64 `json:"worstSubscriberPercent"`
	Lost         int64   `json:"lost"`
	Expected     int64   `json:"expected"`
}

// Failure is one kind of error and how many participants it struck.
type Failure struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

// Server is the measured server's process, from its /metrics.
type Server struct {
	CPUCores float64 `json:"cpuCores"` // CPU seconds per second over the run
	RSSMB    float64 `json:"rssMB"`    // at the end
	MaxRSSMB float64 `json:"maxRssMB"`
	// PacketsPerCPUSecond is RTP packets received by the subscribers per
	// second of the server's CPU.
	PacketsPerCPUSecond float64 `json:"packetsPerCpuSecond"`
	Error               string  `json:"error,omitempty"`
}

// Tool is this process's own cost, on the same machine as the server
// when run beside it.
type Tool struct {
	CPUCores float64 `json:"cpuCores"`
}

func distOf[T int64 | float64 | time.Duration](v []T, unit float64) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	slices.Sort(v)
	f := func(x T) float64 { return float64(x) / unit }
	return Dist{N: len(v), P50: f(percentile(v, 50)), P95: f(percentile(v, 95)), Min: f(v[0]), Max: f(v[len(v)-1])}
}

// report sums up the participants at end.
func (r *runner) report(start, end time.Time, before, after serverSample, scrapeErr error) *Report {
	c := r.cfg
	rep := &Report{Stages: len(r.stages), joinConcurrency: c.JoinConcurrency, Video: fmt.Sprintf("%s %dx%d@%d %dk",
		strings.ToUpper(c.VideoCodec), c.Width, c.Height, c.FPS, c.VideoBitrate/1000),
		DurationSec: end.Sub(start).Seconds()}
	pubKbps := r.publisherReport(rep, end.Sub(start))
	packets := r.subscriberReport(rep, end, pubKbps)
	rep.Server = r.serverReport(before, after, scrapeErr, packets)
	r.mu.Lock()
	for _, e := range slices.Sorted(maps.Keys(r.failures)) {
		rep.Failures = append(rep.Failures, Failure{Error: e, Count: r.failures[e]})
	}
	if r.joinWall > 0 {
		rep.JoinsPerSecond = float64(r.subJoins) / r.joinWall.Seconds()
	}
	r.mu.Unlock()
	return rep
}

// publisherReport fills the publishers' figures and returns what each
// stage's publishers send together, kbit/s.
func (r *runner) publisherReport(rep *Report, d time.Duration) map[*stageRun]float64 {
	var joins []time.Duration
	perStage := map[*stageRun]float64{}
	for _, p := range r.publishers() {
		joins = append(joins, p.join)
		kbps := float64(p.sentBytes.Load()*8) / d.Seconds() / 1000
		rep.PublisherKbps += kbps
		perStage[p.stage] += kbps
	}
	rep.Publishers = len(joins)
	if rep.Publishers > 0 {
		rep.PublisherKbps /= float64(rep.Publishers)
	}
	rep.PublisherJoin = distOf(joins, float64(time.Millisecond))
	return perStage
}

// subscriberReport fills the subscribers' figures and returns the packets
// they received. A subscriber that did not reach every publisher of its
// stage counts in the join times and the failures only.
func (r *runner) subscriberReport(rep *Report, end time.Time, pubKbps map[*stageRun]float64) (packets int64) {
	var joins, lat []time.Duration
	var rates, losses []float64
	for _, s := range r.subscribers() {
		s.mu.Lock()
		joined := len(s.joins) == len(s.stage.publishers())
		joins = append(joins, s.joins...)
		s.mu.Unlock()
		if !joined {
			continue
		}
		rep.Subscribers++
		rep.ExpectedKbps += pubKbps[s.stage]
		sum := subscriberTotals(s, end)
		rates = append(rates, sum.kbps)
		losses = append(losses, sum.lossPercent())
		rep.Loss.Lost += sum.lost
		rep.Loss.Expected += sum.expected
		packets += sum.expected - sum.lost
		rep.Freezes += sum.freezes
		if sum.freezes > 0 {
			rep.Frozen++
		}
		lat = append(lat, sum.latencies...)
	}
	if rep.Subscribers > 0 {
		rep.ExpectedKbps /= float64(rep.Subscribers)
	}
	rep.SubscriberJoin = distOf(joins, float64(time.Millisecond))
	rep.ReceivedKbps = distOf(rates, 1)
	rep.Latency = distOf(lat, float64(time.Millisecond))
	if rep.Loss.Expected > 0 {
		rep.Loss.Percent = 100 * float64(rep.Loss.Lost) / float64(rep.Loss.Expected)
	}
	if len(losses) > 0 {
		rep.Loss.WorstPercent = slices.Max(losses)
	}
	return packets
}

func (r *runner) serverReport(before, after serverSample, scrapeErr error, packets int64) Server {
	if scrapeErr != nil {
		return Server{Error: scrapeErr.Error()}
	}
	cpu := after.cpuSeconds - before.cpuSeconds
	s := Server{CPUCores: cpu / after.at.Sub(before.at).Seconds(), RSSMB: after.rssBytes / 1e6}
	r.mu.Lock()
	s.MaxRSSMB = r.maxRSS / 1e6
	r.mu.Unlock()
	if cpu > 0 {
		s.PacketsPerCPUSecond = float64(packets) / cpu
	}
	return s
}

// subscriberSum is one subscriber's tracks together.
type subscriberSum struct {
	kbps           float64
	expected, lost int64
	freezes        int
	latencies      []time.Duration
}

func (s subscriberSum) lossPercent() float64 {
	if s.expected == 0 {
		return 0
	}
	return 100 * float64(s.lost) / float64(s.expected)
}

func subscriberTotals(s *subscriber, end time.Time) subscriberSum {
	var sum subscriberSum
	var bytes int64
	var first time.Time
	for _, t := range s.snapshotTracks() {
		tt := t.totals(end)
		bytes += tt.bytes
		sum.expected += tt.expected
		sum.lost += tt.lost
		sum.freezes += tt.freezes
		sum.latencies = append(sum.latencies, tt.latencies...)
		if !tt.first.IsZero() && (first.IsZero() || tt.first.Before(first)) {
			first = tt.first
		}
	}
	if !first.IsZero() && end.After(first) {
		sum.kbps = float64(bytes*8) / end.Sub(first).Seconds() / 1000
	}
	return sum
}

// WriteTable writes the report for people.
func (rep *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	row := func(name, format string, a ...any) {
		fmt.Fprintf(&b, "%-26s "+format+"\n", append([]any{name}, a...)...)
	}
	dist := func(name string, d Dist, unit string) {
		if d.N == 0 {
			row(name, "-")
			return
		}
		row(name, "p50 %.1f %s   p95 %.1f %s   max %.1f %s   (n=%d)", d.P50, unit, d.P95, unit, d.Max, unit, d.N)
	}
	row("stages", "%d", rep.Stages)
	row("publishers", "%d (%s, %.0f kbit/s sent each)", rep.Publishers, rep.Video, rep.PublisherKbps)
	row("subscribers joined", "%d", rep.Subscribers)
	row("duration", "%.1f s", rep.DurationSec)
	dist("publisher join", rep.PublisherJoin, "ms")
	dist("subscriber join (WHEP)", rep.SubscriberJoin, "ms")
	row("subscriber join rate", "%.1f /s (%d at a time)", rep.JoinsPerSecond, rep.joinConcurrency)
	if rep.ReceivedKbps.N > 0 {
		row("received per subscriber", "p50 %.0f kbit/s   min %.0f kbit/s   (expected %.0f)",
			rep.ReceivedKbps.P50, rep.ReceivedKbps.Min, rep.ExpectedKbps)
	}
	row("packet loss", "%.2f %% (%d of %d; worst subscriber %.2f %%)", rep.Loss.Percent, rep.Loss.Lost,
		rep.Loss.Expected, rep.Loss.WorstPercent)
	dist("latency (video frames)", rep.Latency, "ms")
	row("freezes (>500 ms)", "%d (%d subscribers)", rep.Freezes, rep.Frozen)
	if rep.Server.Error != "" {
		row("server", "%s", rep.Server.Error)
	} else {
		row("server CPU", "%.2f cores", rep.Server.CPUCores)
		row("server RSS", "%.0f MB (max %.0f MB)", rep.Server.RSSMB, rep.Server.MaxRSSMB)
		row("packets per server CPU-s", "%.0f", rep.Server.PacketsPerCPUSecond)
	}
	row("load tool CPU", "%.2f cores", rep.Tool.CPUCores)
	row("failures", "%d", rep.failureCount())
	for _, f := range rep.Failures {
		fmt.Fprintf(&b, "  %5d × %s\n", f.Count, f.Error)
	}
	if rep.Ramp != nil {
		rep.Ramp.write(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (rep *Report) failureCount() int {
	n := 0
	for _, f := range rep.Failures {
		n += f.Count
	}
	return n
}
