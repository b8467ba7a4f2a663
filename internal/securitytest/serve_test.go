//go:build security

package securitytest

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// stagehandBin builds the stagehand command once for the suite.
func stagehandBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		repo := filepath.Join(filepath.Dir(file), "..", "..")
		binPath = filepath.Join(buildDir, "stagehand")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/stagehand")
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, string(out)}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// serveProc is a `stagehand serve` process and the addresses it printed.
type serveProc struct {
	API, Stage string // host:port
	out        *lockedBuffer
}

var (
	apiLine   = regexp.MustCompile(`API at https?://(\S+)`)
	stageLine = regexp.MustCompile(`stage node \S+ at (\S+)`)
)

// startServe runs `stagehand serve` with args (ports chosen by the system)
// until the test ends.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	base := []string{"serve", "--no-worker", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0",
		"--nats-addr", "127.0.0.1:0", "--rtmp-addr", "", "--rtmps-addr", "", "--data-dir", t.TempDir()}
	cmd := exec.CommandContext(ctx, stagehandBin(t), append(base, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	out := &lockedBuffer{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{out: out}
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			_, _ = io.WriteString(out, line+"\n")
			if m := apiLine.FindStringSubmatch(line); m != nil {
				p.API = m[1]
			}
			if m := stageLine.FindStringSubmatch(line); m != nil && p.Stage == "" {
				p.Stage = m[1]
				close(ready)
			}
		}
	})
	t.Cleanup(func() { cancel(); _ = cmd.Wait(); wg.Wait() })
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start:\n%s", out)
	}
	return p
}

// runServe runs `stagehand serve` with args to its end and returns its
// output and error.
func runServe(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, stagehandBin(t), append([]string{"serve"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "build stagehand: " + e.err.Error() + "\n" + e.out }

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
