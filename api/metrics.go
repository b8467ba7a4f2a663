package api

import "github.com/prometheus/client_golang/prometheus"

// metrics count the API's requests by operation and outcome: the error
// code in the AWS shape, or OK.
type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stagehand_api_requests_total",
			Help: "IVS Real-Time API requests, by operation (unknown when none matched) and code (OK, or the error's type)."},
			[]string{"operation", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stagehand_api_request_seconds",
			Help:    "Time to answer an IVS Real-Time API request, by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"operation"}),
	}
}

// observe counts a request. Paths that name no operation are counted as
// "unknown", so that a scanner cannot mint a series per path.
func (s *Server) observe(op string, e *Error, seconds float64) {
	if _, ok := s.ops[op]; !ok && !tagOps[op] {
		op = "unknown"
	}
	code := "OK"
	if e != nil {
		code = e.Code
	}
	s.metrics.requests.WithLabelValues(op, code).Inc()
	s.metrics.seconds.WithLabelValues(op).Observe(seconds)
}

var tagOps = map[string]bool{"ListTagsForResource": true, "TagResource": true, "UntagResource": true, "tags": true}

// Collectors are the API's metrics, for a registry.
func (s *Server) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.requests, s.metrics.seconds}
}
