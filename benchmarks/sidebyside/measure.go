package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

// sample is what one run of a contender cost, from the kernel's accounting
// of the child process (every thread, user and system time).
type sample struct {
	cpu   time.Duration
	wall  time.Duration
	rssKB int64 // peak resident set
}

// run executes a command to its end and measures it. stdin, when set, feeds it.
func run(ctx context.Context, stdin io.Reader, name string, args ...string) (sample, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w: %s", name, err, tail(out.Bytes()))
	}
	return usage(cmd.ProcessState, wall), nil
}

// runPiped measures consumer fed by producer's stdout; the producer's own
// cost is not counted.
func runPiped(ctx context.Context, producer, consumer []string) (sample, error) {
	src := exec.CommandContext(ctx, producer[0], producer[1:]...)
	pipe, err := src.StdoutPipe()
	if err != nil {
		return sample{}, fmt.Errorf("pipe: %w", err)
	}
	var srcErr bytes.Buffer
	src.Stderr = &srcErr
	if err := src.Start(); err != nil {
		return sample{}, fmt.Errorf("%s: %w", producer[0], err)
	}
	s, err := run(ctx, pipe, consumer[0], consumer[1:]...)
	if werr := src.Wait(); werr != nil && err == nil {
		err = fmt.Errorf("%s: %w: %s", producer[0], werr, tail(srcErr.Bytes()))
	}
	return s, err
}

func usage(ps *os.ProcessState, wall time.Duration) sample {
	s := sample{cpu: ps.UserTime() + ps.SystemTime(), wall: wall}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		s.rssKB = ru.Maxrss // kilobytes on Linux
	}
	return s
}

// concurrently runs the commands at the same time and measures each.
func concurrently(ctx context.Context, cmds [][]string) ([]sample, error) {
	out := make([]sample, len(cmds))
	errs := make([]error, len(cmds))
	done := make(chan struct{})
	for i, c := range cmds {
		go func() {
			defer func() { done <- struct{}{} }()
			out[i], errs[i] = run(ctx, nil, c[0], c[1:]...)
		}()
	}
	for range cmds {
		<-done
	}
	return out, errors.Join(errs...)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func tail(b []byte) []byte {
	const n = 2000
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
