package ingest

import "github.com/prometheus/client_golang/prometheus"

// metrics are the ingest's Prometheus metrics: what an operator watches to
// see encoders publishing, refused, or sending damaged media.
type metrics struct {
	publishing  prometheus.Gauge
	connections *prometheus.CounterVec // by how they ended
	refusals    *prometheus.CounterVec // by code
	bytes       prometheus.Counter
	videoFrames prometheus.Counter
	badFrames   *prometheus.CounterVec // by kind: video, audio
}

// How a connection ended, the connections counter's outcome label.
const (
	outcomeEnded   = "ended"   // the publisher stopped
	outcomeRefused = "refused" // a refusal (see the refusals counter)
	outcomeFailed  = "failed"  // a network or protocol error
	outcomePanic   = "panic"   // a bug; the log line has the stack
)

func newMetrics() *metrics {
	m := &metrics{
		publishing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stagehand_ingest_publishers",
			Help: "RTMP(S) publishers joined to a stage now."}),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stagehand_ingest_connections_total",
			Help: "RTMP(S) connections ended, by outcome: ended, refused, failed, panic."}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stagehand_ingest_refusals_total",
			Help: "Refused RTMP(S) publishes, by code (IVS error code, or UNKNOWN_STREAM_KEY, NO_STAGE, " +
				"PLAY_REFUSED, STAGE_REFUSED)."}, []string{"code"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "stagehand_ingest_received_bytes_total",
			Help: "Bytes received from RTMP(S) publishers, handshakes included."}),
		videoFrames: prometheus.NewCounter(prometheus.CounterOpts{Name: "stagehand_ingest_video_frames_total",
			Help: "H.264 access units forwarded into stages."}),
		badFrames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stagehand_ingest_bad_frames_total",
			Help: "Malformed frames skipped, by kind: video, audio."}, []string{"kind"}),
	}
	for _, o := range []string{outcomeEnded, outcomeRefused, outcomeFailed, outcomePanic} {
		m.connections.WithLabelValues(o)
	}
	for _, k := range []string{"video", "audio"} {
		m.badFrames.WithLabelValues(k)
	}
	return m
}

// Collectors are the ingest's metrics, for a registry.
func (s *Server) Collectors() []prometheus.Collector {
	m := s.metrics
	return []prometheus.Collector{m.publishing, m.connections, m.refusals, m.bytes, m.videoFrames, m.badFrames}
}
