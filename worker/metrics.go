package worker

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/sink"
)

// metrics are the worker's Prometheus metrics; see Collectors.
type metrics struct {
	running                prometheus.Gauge
	frames                 prometheus.Counter
	late                   prometheus.Counter
	render                 prometheus.Histogram
	encode                 prometheus.Histogram
	uploadDelay            prometheus.Histogram
	spoolBytes, spoolLimit prometheus.GaugeFunc
	inputHeight            *prometheus.GaugeVec // by composition and participant
	mu                     sync.Mutex
	fanouts                map[string]*sink.Fanout // running compositions' destinations, by composition id
	queue                  *jobs.Queue
	destDesc               *prometheus.Desc
	failDesc               *prometheus.Desc
	lagDesc                *prometheus.Desc
}

func newMetrics(q *jobs.Queue, sp *spool) *metrics {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 12) // 0.5 ms .. 1 s
	return &metrics{
		spoolBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stagehand_worker_spool_bytes",
			Help: "Bytes of recorded segments waiting in the spool for the object store."},
			func() float64 { return float64(sp.bytes.Load()) }),
		spoolLimit: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stagehand_worker_spool_limit_bytes",
			Help: "The spool's limit: past it, recordings fail rather than fill the disk."},
			func() float64 { return float64(sp.limit) }),
		inputHeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "stagehand_worker_input_height",
			Help: "Height of the pictures a composition decodes of a participant: the simulcast layer it receives."},
			[]string{"composition", "participant"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stagehand_worker_compositions_running",
			Help: "Compositions this worker runs."}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "stagehand_worker_frames_rendered_total",
			Help: "Composite frames rendered and encoded."}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Name: "stagehand_worker_frames_late_total",
			Help: "Composite frames rendered after their time (the machine is too slow for its load)."}),
		render: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "stagehand_worker_render_seconds",
			Help: "Time to render one composite frame.", Buckets: buckets}),
		encode: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "stagehand_worker_encode_seconds",
			Help: "Time to encode one composite frame (and its audio).", Buckets: buckets}),
		uploadDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "stagehand_worker_upload_delay_seconds",
			Help: "Time from a recorded file being finished to its being stored in S3, retries included: how far the " +
				"bucket is behind.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}), // 50 ms .. 100 s
		fanouts: map[string]*sink.Fanout{},
		queue:   q,
		destDesc: prometheus.NewDesc("stagehand_worker_destination_bytes_total",
			"Bytes written to a composition destination.", []string{"composition", "destination", "state"}, nil),
		failDesc: prometheus.NewDesc("stagehand_worker_destination_failures_total",
			"Failed writes and reconnect attempts of a composition destination.", []string{"composition", "destination"}, nil),
		lagDesc: prometheus.NewDesc("stagehand_jobs_waiting",
			"Start-composition jobs no worker has claimed yet (queue lag).", nil, nil),
	}
}

// inputSize returns what records the height of participant's decoded
// pictures in composition id, and what forgets it once its track ended.
func (m *metrics) inputSize(id, participant string) (record func(h int), forget func()) {
	if m == nil {
		return func(int) {}, func() {}
	}
	g := m.inputHeight.WithLabelValues(id, participant)
	last := 0
	return func(h int) {
			if h != last {
				last = h
				g.Set(float64(h))
			}
		}, func() {
			m.inputHeight.DeleteLabelValues(id, participant)
		}
}

// Collectors returns the worker's metrics, to register with a registry.
func (w *Worker) Collectors() []prometheus.Collector {
	m := w.metrics
	return []prometheus.Collector{m.running, m.frames, m.late, m.render, m.encode, m.uploadDelay, m.spoolBytes,
		m.spoolLimit, m.inputHeight, (*dynamic)(m)}
}

// dynamic collects what is read at scrape time: destinations and the queue.
type dynamic metrics

func (d *dynamic) Describe(ch chan<- *prometheus.Desc) {
	ch <- d.destDesc
	ch <- d.failDesc
	ch <- d.lagDesc
}

func (d *dynamic) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	for comp, f := range d.fanouts {
		for _, s := range f.Status() {
			ch <- prometheus.MustNewConstMetric(d.destDesc, prometheus.CounterValue, float64(s.Bytes), comp, s.Name,
				string(s.State))
			ch <- prometheus.MustNewConstMetric(d.failDesc, prometheus.CounterValue, float64(s.Failures), comp, s.Name)
		}
	}
	d.mu.Unlock()
	if d.queue == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if st, err := d.queue.Stats(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(d.lagDesc, prometheus.GaugeValue, float64(st.Waiting))
	}
}

func (m *metrics) track(id string, f *sink.Fanout) func() {
	m.mu.Lock()
	m.fanouts[id] = f
	m.mu.Unlock()
	m.running.Inc()
	return func() {
		m.mu.Lock()
		delete(m.fanouts, id)
		m.mu.Unlock()
		m.running.Dec()
	}
}
