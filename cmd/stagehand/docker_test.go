package main

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/stagehand-rt/stagehand/api"
	"github.com/stagehand-rt/stagehand/ingest"
	"github.com/stagehand-rt/stagehand/internal/natsserver"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/worker"
)

// What can be checked of docker/ without a container engine: every
// stagehand command in docker/compose.yaml parses with this binary's
// flags, the fleet has what issue 7 names, and every metric the Grafana
// dashboard queries exists. `make test-containers` (internal/containertest)
// builds the image and runs the same fleet with podman.

type composeFile struct {
	Services map[string]struct {
		Image   string            `yaml:"image"`
		Command []string          `yaml:"command"`
		Env     map[string]string `yaml:"environment"`
		Deploy  struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
	} `yaml:"services"`
}

func TestComposeFileCommandsParse(t *testing.T) {
	b, err := os.ReadFile("../../docker/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	roles := map[string]int{}
	for name, s := range cf.Services {
		if s.Image != "stagehand:latest" {
			continue
		}
		if len(s.Command) == 0 {
			t.Errorf("service %s has no command", name)
			continue
		}
		for k, v := range s.Env {
			t.Setenv(k, v) // flags read their defaults from the environment
		}
		var err error
		switch args := s.Command[1:]; s.Command[0] {
		case "nats":
			_, err = parseNATSFlags(args, io.Discard)
		case "serve":
			_, err = parseServeFlags(args, io.Discard)
		case "worker":
			_, err = parseWorkerFlags(args, io.Discard)
		case "nats-secrets":
			_, err = parseNATSSecretsFlags(args, io.Discard)
		default:
			t.Errorf("service %s runs unknown command %q", name, s.Command[0])
		}
		if err != nil {
			t.Errorf("service %s: stagehand %s: %v", name, s.Command[0], err)
		}
		roles[s.Command[0]] += max(1, s.Deploy.Replicas)
	}
	if roles["nats"] != 3 || roles["serve"] != 2 || roles["worker"] != 3 {
		t.Errorf("fleet has %v; want 3 NATS nodes, 2 serve (stage nodes), 3 workers", roles)
	}
	for _, want := range []string{"s3", "rtmp", "prometheus", "grafana", "stage"} {
		if _, ok := cf.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
}

func TestDashboardQueriesExistingMetrics(t *testing.T) {
	b, err := os.ReadFile("../../docker/grafana/stagehand.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	w, err := worker.New(worker.Config{BucketsDir: t.TempDir()}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	reg.MustRegister(w.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := []string{"stagehand_jobs_waiting", "stagehand_worker_destination_bytes_total", "stagehand_worker_destination_failures_total"} // collected per composition
	for _, mf := range mfs {
		known = append(known, mf.GetName())
	}
	known = append(known, serveMetricNames(t)...)
	name := regexp.MustCompile(`\b(stagehand_[a-z_]+|process_[a-z_]+)`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if !slices.Contains(known, base) && !slices.Contains(known, m) {
					t.Errorf("panel %q queries %s, which no Stagehand process exports", p.Title, m)
				}
			}
		}
	}
}

// serveMetricNames are the names of the metrics serve adds to the
// worker's: the API's, the stage's and the ingest's, as their collectors
// describe them (a vector without series yet gathers nothing).
func serveMetricNames(t *testing.T) []string {
	t.Helper()
	ctx := t.Context()
	ns, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	dep, err := openDeployment(ctx, dial{url: ns.ClientURL(), name: "dashboard-test"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer dep.close()
	a, err := api.New(ctx, api.Config{Namespace: ivs.Namespace{Region: "us-east-1", Account: "123456789012"},
		Credentials: map[string]string{"AKIATEST": "secret"}}, dep.store, dep.queue, dep.nc)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ingest.Config{RTMPAddr: "127.0.0.1:0"}, dep.store, nil) // never started
	if err != nil {
		t.Fatal(err)
	}
	cs := append(append(a.Collectors(), in.Collectors()...), (&stage.Server{}).Collector())
	descs := make(chan *prometheus.Desc, 64)
	for _, c := range cs {
		c.Describe(descs)
	}
	close(descs)
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range descs {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	if len(names) < 10 {
		t.Fatalf("serve's collectors describe %d metrics: %v", len(names), names)
	}
	return names
}
