package console

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/store"
)

// Fleet is where the fleet view reads from. Workers publish nothing but
// their Prometheus metrics and, in the store, which composition each runs:
// the console lists every worker that runs a composition, and for the
// worker embedded in this process (LocalWorker) its metrics from Metrics.
type Fleet struct {
	Store *store.Store
	Queue interface {
		Stats(ctx context.Context) (jobs.Stats, error)
	}
	// Nodes lists the stage cluster's nodes (stage.Server.Nodes).
	Nodes func(ctx context.Context) ([]stage.NodeStatus, error)
	// Metrics is this process's registry; LocalWorker the id of its
	// embedded worker ("" when none) and LocalCapacity its capacity.
	Metrics       prometheus.Gatherer
	LocalWorker   string
	LocalCapacity int
}

type workerView struct {
	ID           string   `json:"id"`
	Compositions []string `json:"compositions"` // ARNs of the STARTING and ACTIVE ones it runs
	Local        bool     `json:"local"`
	// From the embedded worker's metrics only.
	Capacity   int     `json:"capacity,omitempty"`
	Running    float64 `json:"running"`
	SpoolBytes float64 `json:"spoolBytes"`
	SpoolLimit float64 `json:"spoolLimit"`
	FramesLate float64 `json:"framesLate"`
	Frames     float64 `json:"frames"`
}

// destinationCounters are a running destination's counters, from the
// embedded worker's metrics.
type destinationCounters struct {
	Composition string  `json:"composition"` // id
	Destination string  `json:"destination"` // id
	State       string  `json:"state"`
	Bytes       float64 `json:"bytes"`
	Failures    float64 `json:"failures"`
}

type fleetView struct {
	Workers      []workerView          `json:"workers"`
	Queue        *jobs.Stats           `json:"queue,omitempty"`
	Nodes        []stage.NodeStatus    `json:"nodes"`
	Destinations []destinationCounters `json:"destinations"`
	Errors       []string              `json:"errors,omitempty"`
	At           time.Time             `json:"at"`
}

// maxFleetCompositions bounds the compositions read to find the workers.
const maxFleetCompositions = 2000

func (c *Console) handleFleet(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.fleet(r.Context()))
}

func (c *Console) fleet(ctx context.Context) fleetView {
	v := fleetView{Workers: []workerView{}, Nodes: []stage.NodeStatus{}, Destinations: []destinationCounters{},
		At: c.cfg.Now().UTC()}
	f := c.cfg.Fleet
	if f == nil {
		return v
	}
	fail := func(what string, err error) { v.Errors = append(v.Errors, what+": "+err.Error()) }
	workers := map[string]*workerView{}
	get := func(id string) *workerView {
		if workers[id] == nil {
			workers[id] = &workerView{ID: id, Compositions: []string{}, Local: id == f.LocalWorker}
		}
		return workers[id]
	}
	if f.LocalWorker != "" {
		get(f.LocalWorker).Capacity = f.LocalCapacity
	}
	if f.Store != nil {
		keys, err := f.Store.Compositions.Keys(ctx, "")
		if err != nil {
			fail("compositions", err)
		}
		if len(keys) > maxFleetCompositions {
			keys = keys[len(keys)-maxFleetCompositions:]
		}
		for _, k := range keys {
			comp, err := f.Store.Compositions.Get(ctx, k)
			if err != nil || comp.Run == nil || comp.Run.Worker == "" {
				continue
			}
			if comp.State == ivs.CompositionStarting || comp.State == ivs.CompositionActive {
				wv := get(comp.Run.Worker)
				wv.Compositions = append(wv.Compositions, comp.ARN)
			}
		}
	}
	if f.Queue != nil {
		if st, err := f.Queue.Stats(ctx); err != nil {
			fail("job queue", err)
		} else {
			v.Queue = &st
		}
	}
	if f.Nodes != nil {
		nodes, err := f.Nodes(ctx)
		if err != nil {
			fail("stage nodes", err)
		}
		v.Nodes = append(v.Nodes, nodes...)
	}
	if f.Metrics != nil && f.LocalWorker != "" {
		if err := c.workerMetrics(f.Metrics, get(f.LocalWorker), &v); err != nil {
			fail("metrics", err)
		}
	}
	for _, wv := range workers {
		v.Workers = append(v.Workers, *wv)
	}
	sort.Slice(v.Workers, func(i, j int) bool { return v.Workers[i].ID < v.Workers[j].ID })
	return v
}

// workerMetrics reads the embedded worker's metrics.
func (c *Console) workerMetrics(g prometheus.Gatherer, wv *workerView, v *fleetView) error {
	families, err := g.Gather()
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			value := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "stagehand_worker_compositions_running":
				wv.Running = value
			case "stagehand_worker_spool_bytes":
				wv.SpoolBytes = value
			case "stagehand_worker_spool_limit_bytes":
				wv.SpoolLimit = value
			case "stagehand_worker_frames_late_total":
				wv.FramesLate = value
			case "stagehand_worker_frames_rendered_total":
				wv.Frames = value
			case "stagehand_worker_destination_bytes_total":
				v.Destinations = append(v.Destinations, destinationCounters{Composition: labels["composition"],
					Destination: labels["destination"], State: labels["state"], Bytes: value})
			case "stagehand_worker_destination_failures_total":
				for i := range v.Destinations {
					d := &v.Destinations[i]
					if d.Composition == labels["composition"] && d.Destination == labels["destination"] {
						d.Failures = value
					}
				}
			}
		}
	}
	return err
}
