package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stagehand-rt/stagehand/loadtest"
)

// The credentials serve --dev accepts.
const (
	devKeyID  = "AKIASTAGEHANDDEV"
	devSecret = "stagehand-dev-secret"
)

// sampleEvery is how often every node's /proc and /metrics are read.
const sampleEvery = 250 * time.Millisecond

// load runs `stagehand load --json` in ramp mode against entry's API
// (args give the steps), sampling every node meanwhile.
func (b *bench) load(ctx context.Context, name string, entry *node, nodes []*node,
	args ...string) (*loadtest.Report, error) {
	b.seq++
	logPath := filepath.Join(b.dir, fmt.Sprintf("%02d-load-%s.log", b.seq, name))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, b.s.stagehand, append([]string{"load", "--endpoint-url", "http://" + entry.api,
		"--metrics-url", "http://" + entry.metrics + "/metrics", "--ice-ip", "127.0.0.1", "--json", "--quiet"},
		args...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+devKeyID, "AWS_SECRET_ACCESS_KEY="+devSecret)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = stopGrace
	stopSampling := sampleNodes(nodes, &b.machine)
	err = cmd.Run()
	stopSampling()
	if err != nil {
		return nil, fmt.Errorf("load (%s): %w\n%s", name, err, tail(logPath, 15))
	}
	_ = os.WriteFile(strings.TrimSuffix(logPath, ".log")+".json", out.Bytes(), 0o644)
	var rep loadtest.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("load (%s): its report: %w", name, err)
	}
	if rep.Ramp == nil || len(rep.Ramp.Steps) == 0 {
		return nil, errors.New("load (" + name + "): no ramp step measured")
	}
	return &rep, nil
}

// fixedArgs have the load tool join n subscribers in one step and measure
// them over the bench's seconds.
func (b *bench) fixedArgs(n int) []string {
	return []string{"--subscribers", strconv.Itoa(n), "--ramp-step", strconv.Itoa(n),
		"--ramp-every", strconv.Itoa(b.s.seconds) + "s"}
}

// sampleNodes reads every node's figures, and the machine's CPU, every
// sampleEvery until the returned func is called.
func sampleNodes(nodes []*node, machine *[]sample) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	every := func(f func(context.Context)) {
		wg.Go(func() {
			t := time.NewTicker(sampleEvery)
			defer t.Stop()
			for {
				f(ctx)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	*machine = nil
	sampleMachine := func(context.Context) {
		if s, err := readMachine(); err == nil {
			*machine = append(*machine, s)
		}
	}
	every(sampleMachine)
	for _, n := range nodes {
		n.samples = nil
		every(n.sample)
	}
	return func() {
		cancel()
		wg.Wait()
		sampleMachine(context.Background())
		for _, n := range nodes {
			n.sample(context.Background())
		}
	}
}

// sample appends the node's figures now, if its process could be read.
func (n *node) sample(ctx context.Context) {
	s, err := readProc(n.cmd.Process.Pid)
	if err != nil {
		return
	}
	if m, err := n.scrape(ctx); err == nil {
		s.subs, s.rooms = m[`stagehand_stage_peers{kind="subscribe"}`], m["stagehand_stage_rooms"]
		s.pcs = m["stagehand_stage_peer_connections_open"]
		s.dropped = m["stagehand_stage_fanout_dropped_packets_total"]
	}
	n.samples = append(n.samples, s)
}
