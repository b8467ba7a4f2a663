package console

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/stage"
)

type fakeQueue struct {
	st  jobs.Stats
	err error
}

func (q fakeQueue) Stats(context.Context) (jobs.Stats, error) { return q.st, q.err }

// TestFleet: the embedded worker's metrics, the queue and the stage nodes,
// and what could not be read said rather than hidden.
func TestFleet(t *testing.T) {
	reg := prometheus.NewRegistry()
	running := prometheus.NewGauge(prometheus.GaugeOpts{Name: "stagehand_worker_compositions_running"})
	spool := prometheus.NewGauge(prometheus.GaugeOpts{Name: "stagehand_worker_spool_bytes"})
	dest := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stagehand_worker_destination_bytes_total"},
		[]string{"composition", "destination", "state"})
	fails := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stagehand_worker_destination_failures_total"},
		[]string{"composition", "destination"})
	reg.MustRegister(running, spool, dest, fails)
	running.Set(1)
	spool.Set(4096)
	dest.WithLabelValues("c1", "d1", "ACTIVE").Add(1000)
	fails.WithLabelValues("c1", "d1").Add(2)
	at := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		fleet *Fleet
		want  []string // fragments of the JSON
	}{
		{"none", nil, []string{`"workers":[]`, `"nodes":[]`, `"destinations":[]`}},
		{"embedded worker", &Fleet{Metrics: reg, LocalWorker: "host:1", LocalCapacity: 2,
			Queue: fakeQueue{st: jobs.Stats{Waiting: 3, Unsettled: 1, Stored: 4}},
			Nodes: func(context.Context) ([]stage.NodeStatus, error) {
				return []stage.NodeStatus{{ID: "n1", URL: "http://n1", Stages: 1, Peers: 3, At: at}}, nil
			}},
			[]string{`"id":"host:1","compositions":[],"local":true,"capacity":2,"running":1,"spoolBytes":4096`,
				`"queue":{"Waiting":3,"Unsettled":1,"Stored":4}`, `"id":"n1","url":"http://n1","stages":1`,
				`{"composition":"c1","destination":"d1","state":"ACTIVE","bytes":1000,"failures":2}`}},
		{"sources failing", &Fleet{Queue: fakeQueue{err: errors.New("no stream")},
			Nodes: func(context.Context) ([]stage.NodeStatus, error) { return nil, errors.New("no bucket") }},
			[]string{`"errors":["job queue: no stream","stage nodes: no bucket"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Fleet = tc.fleet })
			b, err := json.Marshal(e.c.fleet(context.Background()))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("fleet %s\nlacks %s", b, w)
				}
			}
		})
	}
}
