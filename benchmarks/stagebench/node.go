package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// node is one `stagehand serve` process and its addresses.
type node struct {
	name, role                   string // role: node, origin, edge, or a plain cluster member
	api, stage, metrics, natsURL string
	dataDir, logPath             string
	cmd                          *exec.Cmd
	exited                       chan struct{}
	samples                      []sample
}

// nodeSpec says how a node joins: alone, or in a stage cluster whose NATS
// and stage URL are first's (nil for the first node itself).
type nodeSpec struct {
	name, role string
	cluster    bool
	first      *node
	stageRole  string // --stage-role, when serve has it
}

const (
	readyTimeout = 90 * time.Second
	stopGrace    = 10 * time.Second
)

// startNode starts a serve process and waits until it answers.
func (b *bench) startNode(ctx context.Context, spec nodeSpec) (*node, error) {
	b.seq++
	n := &node{name: spec.name, role: spec.role, exited: make(chan struct{}),
		dataDir: filepath.Join(b.dir, fmt.Sprintf("%02d-%s", b.seq, strings.ReplaceAll(spec.name, " ", "")))}
	n.logPath = n.dataDir + ".log"
	addrs, err := freeAddrs(5)
	if err != nil {
		return nil, err
	}
	n.api, n.stage, n.metrics = addrs[0], addrs[1], addrs[2]
	// All of a node's media on one UDP port, as deployed (the chart's
	// serve.mediaPort): its sends are batched (a TCP port free now is
	// all but surely free for UDP too).
	args := []string{"serve", "--dev", "--no-worker", "--data-dir", n.dataDir, "--api-addr", n.api,
		"--stage-addr", n.stage, "--metrics-addr", n.metrics, "--rtmp-addr", "", "--rtmps-addr", "",
		"--ice-ip", "127.0.0.1", "--stage-udp-addr", addrs[4]}
	args = append(args, clusterArgs(n, spec, addrs[3])...)
	if err := b.spawn(n, args); err != nil {
		return nil, err
	}
	b.nodes = append(b.nodes, n)
	return n, n.waitReady(ctx)
}

// clusterArgs are a node's NATS and cluster flags; a node without first
// runs the embedded NATS at natsAddr.
func clusterArgs(n *node, spec nodeSpec, natsAddr string) []string {
	var args []string
	stageURL := "http://" + n.stage
	if spec.first == nil {
		n.natsURL = "nats://" + natsAddr
		args = append(args, "--nats-addr", natsAddr)
	} else {
		n.natsURL = spec.first.natsURL
		stageURL = "http://" + spec.first.stage
		args = append(args, "--nats-url", n.natsURL, "--nats-creds",
			filepath.Join(spec.first.dataDir, "nats-secrets", "control", "control.creds"))
	}
	if spec.cluster {
		args = append(args, "--node-url", "http://"+n.stage, "--stage-url", stageURL)
	}
	if spec.stageRole != "" {
		args = append(args, "--stage-role", spec.stageRole)
	}
	return args
}

func (b *bench) spawn(n *node, args []string) error {
	logf, err := os.Create(n.logPath)
	if err != nil {
		return err
	}
	n.cmd = exec.Command(b.s.stagehand, args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: %w", n.name, err)
	}
	go func() {
		_ = n.cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	return nil
}

// waitReady polls the node's /metrics, served once its API is up.
func (n *node) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := n.scrape(ctx); err == nil {
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("%s exited before it answered:\n%s", n.name, tail(n.logPath, 15))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s: %w\n%s", n.name, n.metrics, ctx.Err(), tail(n.logPath, 15))
		case <-t.C:
		}
	}
}

// scrape reads the node's /metrics.
func (n *node) scrape(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.metrics+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseMetrics(string(body)), nil
}

// stop sends SIGTERM, then SIGKILL after stopGrace.
func (n *node) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(stopGrace):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// stopNodes stops the nodes, the first (which runs the NATS) last.
func stopNodes(nodes []*node) {
	done := make(chan struct{})
	for _, n := range nodes[min(1, len(nodes)):] {
		go func() { n.stop(); done <- struct{}{} }()
	}
	for range nodes[min(1, len(nodes)):] {
		<-done
	}
	if len(nodes) > 0 {
		nodes[0].stop()
	}
}

// freeAddrs are n loopback addresses free now.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// tail is a file's last n lines.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// hasFlag says whether `stagehand serve -h` lists a flag.
func hasFlag(bin, flag string) (bool, error) {
	out, err := exec.Command(bin, "serve", "-h").CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return false, err
	}
	return strings.Contains(string(out), "\n  -"+flag+" ") || strings.Contains(string(out), "\n  -"+flag+"\n"), nil
}
