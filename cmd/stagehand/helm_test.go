package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/stagehand-rt/stagehand/internal/natsserver"
	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// The Helm chart (deploy/helm/stagehand): helm lint and helm template with
// each set of values a user would choose, every rendered manifest validated
// by kubeconform against the Kubernetes API's schemas (and the KEDA and
// Prometheus Operator CRDs' schemas) in strict mode, offline, and what the
// manifests say checked: the commands parse with this binary's flags, the
// workers' grace period covers the drain, their requests follow the
// measured cost of a composite, the autoscalers query the queue depth and
// the capacity in use, the dashboard is docker/grafana's.

const chartDir = "../../deploy/helm/stagehand"

// The schemas' sources, from the Go module proxy (no network to anywhere
// else here): the Kubernetes v1.27.0 OpenAPI document kube-openapi keeps as
// test data, and the CRDs the KEDA and Prometheus Operator modules ship.
var schemaModules = map[string]string{
	"kube-openapi": "k8s.io/kube-openapi@v0.0.0-20260721132016-d427ff9ee9ad",
	"keda":         "github.com/kedacore/keda/v2@v2.17.2",
	"prom":         "github.com/prometheus-operator/prometheus-operator@v0.85.0",
}

// chartValues are the sets of values rendered and validated.
var chartValues = map[string][]string{
	"defaults": nil,
	"keda": {"autoscaling.mode=keda", "metrics.serviceMonitor.enabled=true", "worker.capacity=2",
		"channels.arn:aws:ivs:us-east-1:123456789012:channel/abcd1234=rtmps://ingest.example:443/app/sk_x"},
	"hpa": {"autoscaling.mode=hpa", "worker.drainTimeout=2m", "worker.s3.endpoint=http://s3.example:7070",
		"worker.s3.accessKeyId=AKIAS3", "worker.s3.secretAccessKey=s3secret", "serve.iceIP=10.0.0.9",
		"serve.mediaPort=3478", "serve.publicIP=203.0.113.9", "serve.stageRole=edge"},
	"existing secrets": {"credentials.existingSecret=api-keys", "nats.existingSecretPrefix=mine",
		"worker.s3.existingSecret=s3-keys", "metrics.dashboard.enabled=false", "serve.hostNetwork=false"},
}

func TestHelmChart(t *testing.T) {
	helm, kubeconform := goTool(t, "helm"), goTool(t, "kubeconform")
	dash, err := os.ReadFile("../../docker/grafana/stagehand.json")
	if err != nil {
		t.Fatal(err)
	}
	if copied, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "stagehand.json")); err != nil || !bytes.Equal(copied, dash) {
		t.Errorf("deploy/helm/stagehand/dashboards/stagehand.json differs from docker/grafana/stagehand.json (helm reads no file outside the chart: copy it again) %v", err)
	}
	schemas := kubeSchemas(t)
	for name, sets := range chartValues {
		t.Run(name, func(t *testing.T) {
			args := []string{"--namespace", "media"}
			for _, s := range sets {
				args = append(args, "--set", s)
			}
			if out, err := exec.Command(helm, append([]string{"lint", "--strict", chartDir}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			out, err := exec.Command(helm, append([]string{"template", "rel", chartDir}, args...)...).Output()
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, stderrOf(err))
			}
			validate(t, kubeconform, schemas, out)
			docs := decodeManifests(t, out)
			checkManifests(t, name, docs, dash)
			if name == "defaults" {
				natsFromChartSecrets(t, docs)
			}
		})
	}

	t.Run("kubeconform refuses a field the API does not have", func(t *testing.T) {
		for field, bad := range map[string]string{
			"replica": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 3\n" +
				"  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n",
			"minReplicas": "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec:\n  minReplicas: 1\n" +
				"  scaleTargetRef: {name: w}\n  triggers: [{type: prometheus, metadata: {query: q}}]\n",
			"endpoint": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec:\n" +
				"  selector: {}\n  endpoint: [{port: api}]\n",
		} {
			cmd := exec.Command(kubeconform, "-strict", "-schema-location", schemas, "-")
			cmd.Stdin = strings.NewReader(bad)
			if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "'"+field+"'") {
				t.Errorf("kubeconform took an unknown field %s: %v\n%s", field, err, out)
			}
		}
	})
}

// validate runs kubeconform in strict mode on the rendered manifests; every
// document must have a schema and be valid.
func validate(t *testing.T, kubeconform, schemas string, manifests []byte) {
	t.Helper()
	cmd := exec.Command(kubeconform, "-strict", "-summary", "-output", "json", "-schema-location", schemas, "-")
	cmd.Stdin = bytes.NewReader(manifests)
	out, err := cmd.Output()
	var res struct {
		Resources []struct {
			Kind, Name, Status, Msg string
		} `json:"resources"`
		Summary struct {
			Valid, Invalid, Errors, Skipped int
		} `json:"summary"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("kubeconform: %v %v\n%s%s", err, jerr, out, stderrOf(err))
	}
	for _, r := range res.Resources {
		if r.Status != "statusValid" {
			t.Errorf("kubeconform: %s %s: %s %s", r.Kind, r.Name, r.Status, r.Msg)
		}
	}
	t.Logf("kubeconform (strict, offline schemas): %d valid, %d invalid, %d errors, %d skipped", res.Summary.Valid, res.Summary.Invalid, res.Summary.Errors, res.Summary.Skipped)
	if s := res.Summary; s.Invalid+s.Errors+s.Skipped > 0 || s.Valid == 0 {
		t.Errorf("kubeconform: %+v", s)
	}
}

func decodeManifests(t *testing.T, out []byte) map[string]map[string]any {
	t.Helper()
	docs := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("rendered YAML: %v", err)
		}
		if d == nil {
			continue
		}
		md, _ := d["metadata"].(map[string]any)
		docs[fmt.Sprintf("%s/%s", d["kind"], md["name"])] = d
	}
	return docs
}

// dig follows keys (map keys, or list indexes as numbers) into a document.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func checkManifests(t *testing.T, values string, docs map[string]map[string]any, dash []byte) {
	t.Helper()
	var kinds []string
	for k := range docs {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	must := func(key string) map[string]any {
		t.Helper()
		d, ok := docs[key]
		if !ok {
			t.Fatalf("no %s in %v", key, kinds)
		}
		return d
	}
	nats, serve, worker := must("StatefulSet/rel-stagehand-nats"), must("Deployment/rel-stagehand-serve"), must("Deployment/rel-stagehand-worker")
	must("PodDisruptionBudget/rel-stagehand-worker")
	must("PodDisruptionBudget/rel-stagehand-nats")
	if r := dig(nats, "spec", "replicas"); r != 3 {
		t.Errorf("NATS replicas %v, want 3", r)
	}
	if dig(nats, "spec", "volumeClaimTemplates", 0, "spec", "resources", "requests", "storage") == nil {
		t.Error("NATS has no JetStream volume")
	}

	// Every command parses with this binary's flags, with the pod's
	// environment (Kubernetes expands $(VAR) in args).
	for _, d := range []map[string]any{nats, serve, worker} {
		c := dig(d, "spec", "template", "spec", "containers", 0).(map[string]any)
		var args []string
		for _, a := range c["args"].([]any) {
			s := fmt.Sprint(a)
			s = strings.NewReplacer("$(POD_NAME)", "rel-stagehand-nats-0", "$(NODE_IP)", "10.0.0.7").Replace(s)
			args = append(args, s)
		}
		env, _ := c["env"].([]any)
		for _, e := range env {
			e := e.(map[string]any)
			v, ok := e["value"].(string)
			if !ok {
				v = "from-a-secret"
			}
			t.Setenv(e["name"].(string), v)
		}
		var err error
		switch args[0] {
		case "nats":
			_, err = parseNATSFlags(args[1:], io.Discard)
		case "serve":
			_, err = parseServeFlags(args[1:], io.Discard)
		case "worker":
			_, err = parseWorkerFlags(args[1:], io.Discard)
		}
		if err != nil {
			t.Errorf("%s: stagehand %s: %v", values, strings.Join(args, " "), err)
		}
		if sc := dig(d, "spec", "template", "spec", "securityContext", "runAsUser"); sc != 10001 {
			t.Errorf("%s runs as %v, want the image's uid 10001", args[0], sc)
		}
	}

	// Workers: the grace period covers the drain and the hand-off; the
	// requests follow the capacity (about one core per 1080p30 composite).
	wcfg := workerArgs(t, worker)
	grace := dig(worker, "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
	if want := int(wcfg.Drain.Seconds()) + 60; grace != want {
		t.Errorf("workers' grace period %d s, want drain %s + 60 s", grace, wcfg.Drain)
	}
	cpu := fmt.Sprint(dig(worker, "spec", "template", "spec", "containers", 0, "resources", "requests", "cpu"))
	if want := fmt.Sprintf("%dm", wcfg.Worker.Capacity*1000+200); cpu != want {
		t.Errorf("workers request %s CPU for capacity %d, want %s", cpu, wcfg.Worker.Capacity, want)
	}
	if hn := dig(serve, "spec", "template", "spec", "hostNetwork"); (hn == true) != (values != "existing secrets") {
		t.Errorf("serve hostNetwork %v", hn)
	}

	switch values {
	case "keda":
		so := must("ScaledObject/rel-stagehand-worker")
		q := fmt.Sprint(dig(so, "spec", "triggers", 0, "metadata", "query"))
		if !strings.Contains(q, "stagehand_jobs_waiting") || !strings.Contains(q, "stagehand_worker_compositions_running") {
			t.Errorf("KEDA query %q: want the queue depth and the compositions running", q)
		}
		if th := dig(so, "spec", "triggers", 0, "metadata", "threshold"); th != "1.6" {
			t.Errorf("KEDA threshold %v, want capacity 2 × 0.8", th)
		}
		if _, ok := worker["spec"].(map[string]any)["replicas"]; ok {
			t.Error("an autoscaled Deployment sets replicas")
		}
		sm := must("ServiceMonitor/rel-stagehand")
		port := dig(sm, "spec", "endpoints", 0, "port")
		for _, svc := range []string{"Service/rel-stagehand-api", "Service/rel-stagehand-worker"} {
			found := false
			for _, p := range dig(must(svc), "spec", "ports").([]any) {
				found = found || dig(p, "name") == port
			}
			if !found {
				t.Errorf("%s has no port %v for the ServiceMonitor", svc, port)
			}
		}
	case "hpa":
		hpa := must("HorizontalPodAutoscaler/rel-stagehand-worker")
		if m := dig(hpa, "spec", "metrics", 0, "external", "metric", "name"); m != "stagehand_worker_demand" {
			t.Errorf("HPA metric %v", m)
		}
		// One media port, and the public address its candidates give.
		sargs := fmt.Sprint(dig(serve, "spec", "template", "spec", "containers", 0, "args"))
		if !strings.Contains(sargs, "--stage-udp-addr 10.0.0.9:3478") ||
			!strings.Contains(sargs, "--stage-public-addr 203.0.113.9") || !strings.Contains(sargs, "--stage-role edge") {
			t.Errorf("serve args %s: want the media port on the ICE address, the public address and the role", sargs)
		}
	case "existing secrets":
		for k := range docs {
			if strings.HasPrefix(k, "Secret/") {
				t.Errorf("%s rendered although every secret is brought", k)
			}
		}
	case "defaults":
		cm := must("ConfigMap/rel-stagehand-dashboard")
		if got := dig(cm, "data", "stagehand.json"); strings.TrimSpace(fmt.Sprint(got)) != strings.TrimSpace(string(dash)) {
			t.Error("the dashboard ConfigMap is not docker/grafana/stagehand.json")
		}
		users := must("Secret/rel-stagehand-nats-nats")
		if dig(users, "data", "users") == nil || dig(users, "data", "node.crt") == nil {
			t.Error("NATS secret without users or certificate")
		}
	}
}

func workerArgs(t *testing.T, worker map[string]any) workerConfig {
	t.Helper()
	var args []string
	for _, a := range dig(worker, "spec", "template", "spec", "containers", 0, "args").([]any) {
		args = append(args, fmt.Sprint(a))
	}
	t.Setenv("STAGEHAND_NATS_CREDS", "x")
	t.Setenv("STAGEHAND_NATS_TLS_CA", "x")
	t.Setenv("STAGEHAND_NATS_URL", "nats://n:4222")
	c, err := parseWorkerFlags(args[1:], io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kubeSchemas writes JSON schemas kubeconform reads offline and returns
// its -schema-location: one file per kind ({kind}-{group}-{version}.json)
// referring to the definitions of the Kubernetes OpenAPI document, made
// strict (no property the API does not define), and the CRDs' schemas.
func kubeSchemas(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mods := modDirs(t)
	b, err := os.ReadFile(filepath.Join(mods["kube-openapi"], "pkg", "schemaconv", "testdata", "swagger.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, def := range doc.Definitions {
		strict(def)
	}
	writeJSON(t, filepath.Join(dir, "_definitions.json"), map[string]any{"definitions": doc.Definitions})
	for name, def := range doc.Definitions {
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g := g.(map[string]any)
			file := strings.ToLower(fmt.Sprint(g["kind"])) + "-"
			if group := fmt.Sprint(g["group"]); group != "" {
				file += strings.ToLower(strings.Split(group, ".")[0]) + "-"
			}
			file += fmt.Sprint(g["version"]) + ".json"
			writeJSON(t, filepath.Join(dir, file), map[string]any{"$ref": "_definitions.json#/definitions/" + name})
		}
	}
	for file, crd := range map[string]string{
		"scaledobject-keda-v1alpha1.json":   filepath.Join(mods["keda"], "config", "crd", "bases", "keda.sh_scaledobjects.yaml"),
		"servicemonitor-monitoring-v1.json": filepath.Join(mods["prom"], "example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml"),
	} {
		b, err := os.ReadFile(crd)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Spec struct {
				Versions []struct {
					Name   string `yaml:"name"`
					Schema struct {
						OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
					} `yaml:"schema"`
				} `yaml:"versions"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", crd, err)
		}
		for _, v := range c.Spec.Versions {
			if strings.HasSuffix(file, "-"+v.Name+".json") {
				s := v.Schema.OpenAPIV3Schema
				strict(s)
				writeJSON(t, filepath.Join(dir, file), s)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			t.Fatalf("no schema of %s in %s", file, crd)
		}
	}
	return dir + "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
}

// strict forbids properties a schema does not define (as kubeconform's
// -strict schemas do), and lets an int-or-string be either.
func strict(v any) {
	switch s := v.(type) {
	case map[string]any:
		if _, ok := s["properties"]; ok {
			if _, set := s["additionalProperties"]; !set && s["x-kubernetes-preserve-unknown-fields"] != true {
				s["additionalProperties"] = false
			}
		}
		if s["format"] == "int-or-string" || s["x-kubernetes-int-or-string"] == true {
			delete(s, "type")
			delete(s, "format")
			s["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		for _, c := range s {
			strict(c)
		}
	case []any:
		for _, c := range s {
			strict(c)
		}
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// modDirs downloads (or finds in the module cache) the schemas' modules.
func modDirs(t *testing.T) map[string]string {
	t.Helper()
	var mods []string
	for _, m := range schemaModules {
		mods = append(mods, m)
	}
	cmd := exec.Command("go", append([]string{"mod", "download", "-json"}, mods...)...)
	cmd.Dir = t.TempDir() // outside this module: its go.mod and go.sum stay as they are
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %v: %v\n%s%s", mods, err, out, stderrOf(err))
	}
	dirs := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if m.Error != "" {
			t.Fatalf("go mod download %s: %s", m.Path, m.Error)
		}
		for k, v := range schemaModules {
			if v == m.Path+"@"+m.Version {
				dirs[k] = m.Dir
			}
		}
	}
	return dirs
}

// goTool finds a tool scripts/deps.sh --test installs with go install.
func goTool(t *testing.T, name string) string {
	t.Helper()
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not installed: run scripts/deps.sh --test (make test does)", name)
	return ""
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// natsFromChartSecrets runs the chart's NATS — three nodes, routes mutual
// TLS — from the Secrets helm generated (RSA keys, a CA and one node
// certificate whose names include localhost), and logs in as control and
// as worker with their creds and the CA, as serve and the workers do.
func natsFromChartSecrets(t *testing.T, docs map[string]map[string]any) {
	t.Helper()
	dir := t.TempDir()
	file := func(secret, key string) string {
		t.Helper()
		enc, _ := dig(docs["Secret/rel-stagehand-nats-"+secret], "data", key).(string)
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(b) == 0 {
			t.Fatalf("Secret %s: %s: %v", secret, key, err)
		}
		p := filepath.Join(dir, secret+"-"+key)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users, err := readUsers(file("nats", "users"))
	if err != nil {
		t.Fatal(err)
	}
	tlsFiles := &natsserver.TLSFiles{Cert: file("nats", "node.crt"), Key: file("nats", "node.key"), CA: file("nats", "ca.crt")}
	var routes, addrs []string
	for range 3 {
		addrs = append(addrs, freeAddr(t))
		routes = append(routes, "nats-route://localhost:"+strings.Split(freeAddr(t), ":")[1])
	}
	var nodes []*natsserver.Server
	for i := range 3 {
		ns, err := natsserver.Start(natsserver.Config{Addr: addrs[i], StoreDir: filepath.Join(dir, fmt.Sprint(i)),
			Name: fmt.Sprintf("n%d", i), Users: users, TLS: tlsFiles,
			Cluster: &natsserver.ClusterConfig{Name: "chart", Addr: strings.TrimPrefix(strings.Replace(routes[i], "localhost", "127.0.0.1", 1), "nats-route://"),
				Routes: routes, TLS: tlsFiles}})
		if err != nil {
			t.Fatalf("NATS node %d with the chart's secrets: %v", i, err)
		}
		defer ns.Shutdown()
		nodes = append(nodes, ns)
	}
	testkit.WaitFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		for i, n := range nodes {
			if n.Routes() < 2 {
				return fmt.Errorf("node %d has %d routes (mutual TLS with the chart's certificate)", i, n.Routes())
			}
		}
		return nil
	})
	for _, role := range []string{"control", "worker"} {
		user, pass, err := readCreds(file(role, role+".creds"))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect("nats://localhost:"+strings.Split(addrs[0], ":")[1], nats.UserInfo(user, pass),
			nats.RootCAs(file(role, "ca.crt")), nats.MaxReconnects(0))
		if err != nil {
			t.Fatalf("%s logs in with the chart's secrets: %v", role, err)
		}
		if !nc.TLSRequired() {
			t.Errorf("%s connected without TLS", role)
		}
		nc.Close()
	}
}
