// Command stagebench measures stage nodes as processes on loopback: what
// one node spends per packet and per subscriber, what a cascade of edges
// takes off the origin, and the largest audience three nodes hold. It
// starts `stagehand serve` processes and drives them with `stagehand load`;
// CPU and RSS come from the kernel (/proc/<pid>) over the load tool's
// measuring window, after every subscriber joined. It is run by
// `make bench-stage`, never by `make test`.
//
// Environment: STAGEBENCH_SUBSCRIBERS (100), STAGEBENCH_SECONDS (20),
// STAGEBENCH_SKIP_RAMP (1 skips the largest audience), STAGEBENCH_RAMP_STEP
// (50), STAGEBENCH_RAMP_EVERY (seconds a step runs, 10), STAGEBENCH_RAMP_MAX
// (the ramp's ceiling, 0 for none), STAGEBENCH_KEEP (1 keeps the processes'
// logs and data), STAGEHAND (bin/stagehand).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

type settings struct {
	subscribers, seconds         int
	skipRamp, keep               bool
	rampStep, rampEvery, rampMax int
	stagehand                    string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stagebench:", err)
		os.Exit(1)
	}
}

func loadSettings() (settings, error) {
	s := settings{
		subscribers: envInt("STAGEBENCH_SUBSCRIBERS", 100), seconds: envInt("STAGEBENCH_SECONDS", 20),
		skipRamp: os.Getenv("STAGEBENCH_SKIP_RAMP") == "1", keep: os.Getenv("STAGEBENCH_KEEP") == "1",
		rampStep: envInt("STAGEBENCH_RAMP_STEP", 50), rampEvery: envInt("STAGEBENCH_RAMP_EVERY", 10),
		rampMax: envInt("STAGEBENCH_RAMP_MAX", 0), stagehand: envStr("STAGEHAND", "bin/stagehand"),
	}
	if s.subscribers < 1 || s.seconds < 1 || s.rampStep < 1 || s.rampEvery < 1 || s.rampMax < 0 {
		return s, errors.New("subscribers, seconds, ramp step and ramp seconds must be at least 1")
	}
	abs, err := filepath.Abs(s.stagehand)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		return s, fmt.Errorf("stagehand binary: %w (run make build)", err)
	}
	s.stagehand = abs
	return s, nil
}

// run measures the three scenarios and prints their table and summary.
func run(ctx context.Context, out io.Writer) (err error) {
	s, err := loadSettings()
	if err != nil {
		return err
	}
	b, err := newBench(s)
	if err != nil {
		return err
	}
	var res *results
	defer func() { b.close(err != nil || res.hadFailures()) }()
	if res, err = b.all(ctx); err != nil {
		return err
	}
	return res.write(out)
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

func envStr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
