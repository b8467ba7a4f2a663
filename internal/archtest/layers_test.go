package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/stagehand-rt/stagehand"

// A rule says that the packages matching from, except those matching
// except, may not depend on any package matching not: directly or through
// others. Patterns are relative to the module; "x/..." matches x and the
// packages under it, "..." every package of the module.
type rule struct {
	from, except, not []string
	allow             []string // dependencies not forbids, after all
	// tests extends the rule to what the packages' tests import directly.
	tests bool
	why   string
}

// rules is the direction DESIGN sets: cmd → api, stage, jobs, worker →
// compositor → layout, compositor → encoder → sink, read against the
// imports there are. Upper packages are fenced in by who may import them,
// so that a package added later is covered too.
var rules = []rule{
	{from: []string{"..."}, except: []string{"cmd/..."}, not: []string{"cmd/..."}, tests: true,
		why: "the binary wires everything; nothing imports it"},
	// What the SFU, the ingest and the workers share with the API lives in
	// stagesignal, token/tokenstore, jobs and store. The ingest is no
	// exception: it is the stage's RTMP door, a data-plane peer of the SFU
	// that reads its ingest configurations from the store. The harness
	// that starts everything for tests wires the API as the binary does;
	// the console sits on top of the API, whose operations it runs in
	// process for its signed-in operators.
	{from: []string{"..."}, except: []string{"api/...", "cmd/...", "internal/stagetest", "console"},
		not: []string{"api/..."},
		why: "the control plane is on top: nothing under it imports the API server"},
	{from: []string{"..."}, except: []string{"worker", "cmd/..."}, not: []string{"worker"},
		why: "the worker is a process role, wired by the binary alone"},
	{from: []string{"layout", "token", "stagesignal", "internal/avframe", "internal/validation", "internal/refusal"},
		not: []string{"..."}, allow: []string{"internal/validation", "internal/refusal"},
		why: "pure packages, and contracts that must pull in neither side, import nothing of ours but the error shapes"},
	{from: []string{"stage/..."}, not: []string{"recording", "jobs", "compositor", "encoder", "sink/...", "ingest"},
		why: "the SFU relays media; recording, composing and the ingest hook on from above"},
	{from: []string{"ingest"}, not: []string{"recording", "jobs"},
		why: "the ingest publishes into the stage; it neither composes nor records"},
	{from: []string{"jobs"}, not: []string{"stage/...", "recording", "compositor", "encoder", "sink/..."},
		why: "the job queue is the contract between the API and the workers; it knows neither side's media"},
	{from: []string{"ivs", "store", "token/..."},
		not: []string{"stage/...", "ingest", "recording", "jobs", "compositor", "encoder", "sink/..."},
		why: "the resource model, the store and the tokens sit under everything that reads them"},
	{from: []string{"compositor", "encoder", "sink/...", "trackdecode", "synth"},
		not: []string{"stage/...", "ingest", "recording", "jobs", "store", "compose"},
		why: "the media core knows nothing of stages, jobs or resources: the worker and compose feed it"},
	{from: []string{"engine"}, not: []string{"stage/...", "ingest", "recording", "jobs", "store", "ivs", "compose"},
		why: "the composition engine composes what it is fed: files (compose) and stages (worker) feed it from above"},
	{from: []string{"compositor", "encoder", "sink/...", "trackdecode", "synth"}, not: []string{"engine"},
		why: "the engine is built on the media core, not the other way round"},
	{from: []string{"encoder"}, not: []string{"compositor"}, why: "compositor → encoder"},
	{from: []string{"sink/..."}, not: []string{"compositor", "encoder"}, why: "encoder → sink"},
}

// TestDependenciesRunDownhill checks every rule against `go list`.
func TestDependenciesRunDownhill(t *testing.T) {
	pkgs := listPackages(t)
	for _, r := range rules {
		for _, p := range slices.Concat(r.from, r.except, r.not, r.allow) {
			if !slices.ContainsFunc(pkgs, func(pk pkg) bool { return match(p, pk.path) }) {
				t.Errorf("rule %q names %s, which matches no package: update the rule", r.why, p)
			}
		}
		for _, p := range pkgs {
			if matchAny(r.from, p.path) && !matchAny(r.except, p.path) {
				checkRule(t, r, p, pkgs)
			}
		}
	}
}

// checkRule reports the dependencies of p the rule forbids, with the
// import path that leads to the first.
func checkRule(t *testing.T, r rule, p pkg, pkgs []pkg) {
	t.Helper()
	deps := p.deps
	if r.tests {
		deps = slices.Concat(deps, p.testImports)
	}
	var bad []string
	for _, d := range deps {
		if d != p.path && matchAny(r.not, d) && !matchAny(r.allow, d) && !slices.Contains(bad, d) {
			bad = append(bad, d)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s depends on %s (%s): %s", p.path, strings.Join(bad, ", "),
			strings.Join(importPath(p, bad[0], pkgs), " → "), r.why)
	}
}

// pkg is one package of the module, its paths relative to the module.
type pkg struct {
	path        string
	imports     []string // direct, of the module only
	deps        []string // transitive, of the module only
	testImports []string // what its tests import directly, of the module only
}

// listPackages runs go list over the module, with the fleet tests' build
// tag so that their package is seen whole.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	fields := "-json=ImportPath,Imports,Deps,TestImports,XTestImports"
	cmd := exec.Command("go", "list", "-tags=faults", fields, module+"/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath                               string
			Imports, Deps, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, pkg{path: relative(p.ImportPath), imports: ours(p.Imports), deps: ours(p.Deps),
			testImports: ours(slices.Concat(p.TestImports, p.XTestImports))})
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// ours keeps the module's packages of paths, relative to the module.
func ours(paths []string) []string {
	var rel []string
	for _, p := range paths {
		if p == module || strings.HasPrefix(p, module+"/") {
			rel = append(rel, relative(p))
		}
	}
	return rel
}

func relative(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func matchAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, path) })
}

// match reports whether path matches pattern: "x", "x/..." or "...".
func match(pattern, path string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

// importPath finds a chain of direct imports from p to dep, breadth first,
// for the error message; a test import has no chain beyond itself.
func importPath(p pkg, dep string, pkgs []pkg) []string {
	byPath := map[string]pkg{}
	for _, q := range pkgs {
		byPath[q.path] = q
	}
	from := map[string]string{p.path: ""}
	queue := []string{p.path}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == dep {
			var chain []string
			for c := dep; c != ""; c = from[c] {
				chain = append([]string{c}, chain...)
			}
			return chain
		}
		for _, next := range byPath[cur].imports {
			if _, seen := from[next]; !seen {
				from[next] = cur
				queue = append(queue, next)
			}
		}
	}
	return []string{p.path, "(test)", dep}
}
