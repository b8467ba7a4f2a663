package testkit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures instead of failing the
// test; Fatalf ends the calling goroutine as the real one does.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.failed, "\n")
}

// run calls f with a recorder on a goroutine of its own, so that Fatalf
// can end it, and returns what failed.
func run(t *testing.T, f func(tb testing.TB)) string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.failures()
}

func shortWait(t *testing.T) {
	t.Helper()
	old := goroutineWait
	goroutineWait = 200 * time.Millisecond
	t.Cleanup(func() { goroutineWait = old })
}

func blockedUntil(release chan struct{}) { <-release }

func TestGoroutinesThatEndPass(t *testing.T) {
	check := CheckGoroutines(t)
	release := make(chan struct{})
	for range 3 {
		go blockedUntil(release)
	}
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	// The check waits for them rather than failing at once.
	if got := run(t, func(tb testing.TB) {
		tb.Helper()
		SnapshotGoroutines().CheckEnded(tb)
	}); got != "" {
		t.Errorf("nothing started: %s", got)
	}
	check()
}

func TestLeftGoroutineFailsWithItsStack(t *testing.T) {
	shortWait(t)
	release := make(chan struct{})
	defer close(release)
	g := SnapshotGoroutines()
	go blockedUntil(release)
	got := run(t, g.CheckEnded)
	if !strings.Contains(got, "1 goroutines started during the test") || !strings.Contains(got, "testkit.blockedUntil") {
		t.Errorf("failure %q, want the left goroutine and its stack", got)
	}
}

func TestEarlierAndIgnoredGoroutinesAreNotReported(t *testing.T) {
	shortWait(t)
	release := make(chan struct{})
	defer close(release)
	go blockedUntil(release) // running before the snapshot, and after
	g := SnapshotGoroutines(Running("testkit.blockedUntil"))
	go blockedUntil(release)
	if got := run(t, g.CheckEnded); got != "" {
		t.Errorf("failed: %s", got)
	}
}

func TestStartedCountsNewGoroutines(t *testing.T) {
	release := make(chan struct{})
	g := SnapshotGoroutines()
	if n := len(g.Started()); n != 0 {
		t.Errorf("%d started before any was", n)
	}
	for range 4 {
		go blockedUntil(release)
	}
	defer close(release)
	// Not yet scheduled, they may not show blockedUntil yet.
	var n int
	for _, s := range g.Started() {
		if strings.Contains(s, "created by github.com/stagehand-rt/stagehand/internal/testkit.TestStartedCountsNewGoroutines") {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d started, want 4", n)
	}
}

func TestWaitFor(t *testing.T) {
	start := time.Now()
	calls := 0
	got := run(t, func(tb testing.TB) {
		tb.Helper()
		WaitFor(tb, time.Second, time.Millisecond, func() error {
			if calls++; calls < 5 {
				return fmt.Errorf("%d calls", calls)
			}
			return nil
		})
	})
	if got != "" || calls != 5 {
		t.Errorf("failure %q after %d calls, want none after 5", got, calls)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("took %v", took)
	}

	calls = 0
	got = run(t, func(tb testing.TB) {
		tb.Helper()
		WaitFor(tb, 20*time.Millisecond, time.Millisecond, func() error {
			calls++
			return fmt.Errorf("%d calls", calls)
		})
		t.Error("WaitFor returned after failing")
	})
	if want := fmt.Sprintf("not within 20ms: %d calls", calls); got != want {
		t.Errorf("failure %q, want %q (the last error)", got, want)
	}
}

func TestUntil(t *testing.T) {
	ok := false
	cond := Until("the light", func() bool { return ok })
	if err := cond(); err == nil || err.Error() != "still waiting for the light" {
		t.Errorf("false condition: %v", err)
	}
	ok = true
	if err := cond(); err != nil {
		t.Errorf("true condition: %v", err)
	}
}

func TestIdleHTTPConnsAreIgnored(t *testing.T) {
	shortWait(t)
	release, entered := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(entered)
			<-release
		}
	}))
	defer srv.Close()
	defer close(release)
	c := srv.Client()
	defer c.CloseIdleConnections()

	g := SnapshotGoroutines(IdleHTTPConns)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := run(t, g.CheckEnded); got != "" {
		t.Errorf("an idle connection's goroutines reported: %s", got)
	}
	// A connection whose handler runs is not idle.
	go func() {
		if resp, err := c.Get(srv.URL + "/block"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	got := run(t, g.CheckEnded)
	if !strings.Contains(got, "ServeHTTP") {
		t.Errorf("failure %q, want the blocked handler's connection", got)
	}
}

func TestCheckNoneRunning(t *testing.T) {
	shortWait(t)
	release := make(chan struct{})
	go blockedUntil(release)
	// Until it is scheduled, its stack does not show blockedUntil.
	WaitFor(t, time.Second, time.Millisecond, Until("the goroutine to block", func() bool {
		return slices.ContainsFunc(stacks(), func(s stack) bool { return strings.Contains(s.text, "testkit.blockedUntil(") })
	}))
	got := run(t, func(tb testing.TB) {
		tb.Helper()
		CheckNoneRunning(tb, "nothing.Such", "testkit.blockedUntil")
	})
	if !strings.Contains(got, "1 goroutines running nothing.Such or testkit.blockedUntil") {
		t.Errorf("failure %q, want the running goroutine", got)
	}
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	if got := run(t, func(tb testing.TB) {
		tb.Helper()
		CheckNoneRunning(tb, "testkit.blockedUntil")
	}); got != "" {
		t.Errorf("after it ended: %s", got)
	}
}
