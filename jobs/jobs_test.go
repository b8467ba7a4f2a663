package jobs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-rt/stagehand/internal/natsserver"
	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// testConfig has a short AckWait so redelivery tests run in seconds.
var testConfig = Config{AckWait: time.Second, MaxDeliver: 3}

func startServer(t *testing.T) *natsserver.Server {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// worker is one process's connection and queue.
type worker struct {
	nc *nats.Conn
	js jetstream.JetStream
	q  *Queue
}

func newWorker(t *testing.T, s *natsserver.Server, cfg Config) *worker {
	t.Helper()
	nc, js := testkit.Connect(t, s.ClientURL())
	q, err := Open(testContext(t, 10*time.Second), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &worker{nc: nc, js: js, q: q}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func compositionARN(i int) string {
	return fmt.Sprintf("arn:aws:ivs:us-east-1:123456789012:composition/c%011d", i)
}

func submit(t *testing.T, q *Queue, arn string) {
	t.Helper()
	err := q.Submit(testContext(t, 5*time.Second), Job{Name: arn, StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/s1"})
	if err != nil {
		t.Fatal(err)
	}
}

func claim(t *testing.T, q *Queue, within time.Duration) *Claim {
	t.Helper()
	c, err := q.Claim(testContext(t, within))
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return c
}

// noClaim checks that no job is delivered for d.
func noClaim(t *testing.T, q *Queue, d time.Duration) {
	t.Helper()
	c, err := q.Claim(testContext(t, d))
	if err == nil {
		t.Fatalf("claimed %s (attempt %d), want nothing", c.Job.Name, c.Attempt)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim: %v, want deadline exceeded", err)
	}
}

func stats(t *testing.T, q *Queue) Stats {
	t.Helper()
	st, err := q.Stats(testContext(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitStats waits for the queue's counts to become want: they are
// eventually consistent.
func waitStats(t *testing.T, q *Queue, want Stats) {
	t.Helper()
	testkit.WaitFor(t, 2*time.Second, 20*time.Millisecond, func() error {
		if st := stats(t, q); st != want {
			return fmt.Errorf("stats %+v, want %+v", st, want)
		}
		return nil
	})
}

func TestSubmitClaimDone(t *testing.T) {
	t.Parallel()
	w := newWorker(t, startServer(t), testConfig)
	arn := compositionARN(1)
	submit(t, w.q, arn)
	// The consumer's counts follow the stream's a moment later.
	waitStats(t, w.q, Stats{Waiting: 1, Stored: 1})

	c := claim(t, w.q, 5*time.Second)
	if c.Job.Name != arn || c.Job.StageARN == "" || c.Job.SubmittedAt.IsZero() {
		t.Fatalf("claimed %+v", c.Job)
	}
	if c.Attempt != 1 || c.LastAttempt() {
		t.Fatalf("attempt %d, last %v; want 1, false", c.Attempt, c.LastAttempt())
	}
	waitStats(t, w.q, Stats{Unsettled: 1, Stored: 1})
	if err := c.Done(testContext(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitStats(t, w.q, Stats{})
}

func TestDuplicateSubmitQueuedOnce(t *testing.T) {
	t.Parallel()
	w := newWorker(t, startServer(t), testConfig)
	arn := compositionARN(1)
	submit(t, w.q, arn)
	submit(t, w.q, arn)
	if st := stats(t, w.q); st.Stored != 1 {
		t.Fatalf("stored %d jobs, want 1", st.Stored)
	}
	c := claim(t, w.q, 5*time.Second)
	if err := c.Done(testContext(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	noClaim(t, w.q, 300*time.Millisecond)
}

func TestTwoWorkersClaimEachJobOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cfg := Config{AckWait: 10 * time.Second}
	workers := []*worker{newWorker(t, s, cfg), newWorker(t, s, cfg)}
	const n = 40
	for i := range n {
		submit(t, workers[0].q, compositionARN(i))
	}

	var mu sync.Mutex
	claimed := map[string]int{}
	var held []*Claim
	perWorker := make([]int, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() {
			for {
				// Hold every claim so a second delivery would show.
				c, err := w.q.Claim(testContext(t, 500*time.Millisecond))
				if errors.Is(err, context.DeadlineExceeded) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				claimed[c.Job.Name]++
				held = append(held, c)
				perWorker[i]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != n {
		t.Fatalf("claimed %d distinct jobs, want %d", len(claimed), n)
	}
	for arn, k := range claimed {
		if k != 1 {
			t.Errorf("%s claimed %d times", arn, k)
		}
	}
	t.Logf("claims per worker: %v", perWorker)
	for _, c := range held {
		if err := c.Done(testContext(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	waitStats(t, workers[0].q, Stats{})
}

func TestHeartbeatHoldsClaimAndLapseRedelivers(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newWorker(t, s, testConfig), newWorker(t, s, testConfig)
	arn := compositionARN(1)
	submit(t, a.q, arn)

	c := claim(t, a.q, 5*time.Second)
	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	defer stopHeartbeat()
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		c.Heartbeat(hbCtx)
	}()
	// Three and a half AckWaits with heartbeats: nobody else gets it.
	noClaim(t, b.q, 3500*time.Millisecond)

	// The worker dies: no more heartbeats, its connection gone.
	stopHeartbeat()
	<-hbDone
	a.nc.Close()
	start := time.Now()
	c2 := claim(t, b.q, 5*time.Second)
	if took := time.Since(start); took > 2*testConfig.AckWait {
		t.Errorf("redelivered after %v, want within about AckWait (%v)", took, testConfig.AckWait)
	}
	if c2.Job.Name != arn || c2.Attempt != 2 {
		t.Fatalf("redelivered %s attempt %d, want %s attempt 2", c2.Job.Name, c2.Attempt, arn)
	}
	if err := c2.Done(testContext(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestReturnRedeliversAfterDelay(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newWorker(t, s, testConfig), newWorker(t, s, testConfig)
	submit(t, a.q, compositionARN(1))

	c := claim(t, a.q, 5*time.Second)
	const delay = 700 * time.Millisecond
	start := time.Now()
	if err := c.Return(testContext(t, 5*time.Second), delay); err != nil {
		t.Fatal(err)
	}
	c2 := claim(t, b.q, 5*time.Second)
	took := time.Since(start)
	if took < delay-50*time.Millisecond || took > delay+testConfig.AckWait {
		t.Errorf("redelivered after %v, want about %v", took, delay)
	}
	if c2.Attempt != 2 {
		t.Errorf("attempt %d, want 2", c2.Attempt)
	}
	if err := c2.Done(testContext(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestGiveUpNeverRedelivers(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a, b := newWorker(t, s, testConfig), newWorker(t, s, testConfig)
	submit(t, a.q, compositionARN(1))

	c := claim(t, a.q, 5*time.Second)
	if err := c.GiveUp(testContext(t, 5*time.Second), "poison"); err != nil {
		t.Fatal(err)
	}
	noClaim(t, b.q, testConfig.AckWait+500*time.Millisecond)
	waitStats(t, a.q, Stats{})
}

func TestMaxDeliverBoundsAttempts(t *testing.T) {
	t.Parallel()
	w := newWorker(t, startServer(t), testConfig)
	arn := compositionARN(1)
	submit(t, w.q, arn)

	for attempt := 1; attempt <= testConfig.MaxDeliver; attempt++ {
		c := claim(t, w.q, 5*time.Second)
		if c.Attempt != attempt {
			t.Fatalf("attempt %d, want %d", c.Attempt, attempt)
		}
		if last := attempt == testConfig.MaxDeliver; c.LastAttempt() != last {
			t.Fatalf("attempt %d: LastAttempt %v, want %v", attempt, c.LastAttempt(), last)
		}
		if err := c.Return(testContext(t, 5*time.Second), 0); err != nil {
			t.Fatal(err)
		}
	}
	noClaim(t, w.q, testConfig.AckWait+500*time.Millisecond)

	// The exhausted job stays in the stream until reaped.
	waitStats(t, w.q, Stats{Stored: 1})
	var reaped []string
	n, err := w.q.ReapExhausted(testContext(t, 5*time.Second), func(_ context.Context, j Job) error {
		reaped = append(reaped, j.Name)
		return nil
	})
	if err != nil || n != 1 || len(reaped) != 1 || reaped[0] != arn {
		t.Fatalf("reaped %d %v (%v), want %s", n, reaped, err, arn)
	}
	waitStats(t, w.q, Stats{})
}

func TestReapJobWhoseLastWorkerDied(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cfg := Config{AckWait: time.Second, MaxDeliver: 2}
	a, b := newWorker(t, s, cfg), newWorker(t, s, cfg)
	dead, live := compositionARN(1), compositionARN(2)
	submit(t, a.q, dead)

	c := claim(t, a.q, 5*time.Second)
	if err := c.Return(testContext(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	c = claim(t, a.q, 5*time.Second)
	if !c.LastAttempt() {
		t.Fatalf("attempt %d of %d is not the last", c.Attempt, cfg.MaxDeliver)
	}
	a.nc.Close() // the worker dies on the last attempt
	submit(t, b.q, live)
	running := claim(t, b.q, 5*time.Second)
	if running.Job.Name != live {
		t.Fatalf("claimed %s, want %s", running.Job.Name, live)
	}
	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	defer stopHeartbeat()
	go running.Heartbeat(hbCtx)

	// An idle worker of the fleet waits for work meanwhile; the server
	// drops the lapsed job, out of attempts, when it next serves a pull.
	noClaim(t, b.q, 2*cfg.AckWait)
	var reaped []string
	testkit.WaitFor(t, cfg.AckWait, 100*time.Millisecond, func() error {
		_, err := b.q.ReapExhausted(testContext(t, 5*time.Second), func(_ context.Context, j Job) error {
			reaped = append(reaped, j.Name)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(reaped) == 0 {
			return errors.New("nothing reaped")
		}
		return nil
	})
	if len(reaped) != 1 || reaped[0] != dead {
		t.Fatalf("reaped %v, want [%s] only", reaped, dead)
	}
	waitStats(t, b.q, Stats{Unsettled: 1, Stored: 1}) // the running job only
}

func TestReapRetriesWhenHandleFails(t *testing.T) {
	t.Parallel()
	w := newWorker(t, startServer(t), Config{AckWait: time.Second, MaxDeliver: 1})
	submit(t, w.q, compositionARN(1))
	c := claim(t, w.q, 5*time.Second)
	if err := c.Return(testContext(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	noClaim(t, w.q, 200*time.Millisecond) // the pull that finds it exhausted

	fail := errors.New("store unavailable")
	n, err := w.q.ReapExhausted(testContext(t, 5*time.Second), func(context.Context, Job) error { return fail })
	if !errors.Is(err, fail) || n != 0 {
		t.Fatalf("reap: %d, %v; want 0, %v", n, err, fail)
	}
	// The failed advisory is handed back; the server takes a moment to
	// make it deliverable again.
	testkit.WaitFor(t, 2*time.Second, 20*time.Millisecond, func() error {
		if n, err = w.q.ReapExhausted(testContext(t, 5*time.Second), func(context.Context, Job) error { return nil }); n == 0 && err == nil {
			return errors.New("nothing reaped")
		}
		return nil // an error too ends the wait: it fails below
	})
	if err != nil || n != 1 {
		t.Fatalf("reap again: %d, %v; want 1", n, err)
	}
	waitStats(t, w.q, Stats{})
}

func TestStopSignals(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	api, wk := newWorker(t, s, testConfig), newWorker(t, s, testConfig)
	ctx := testContext(t, 10*time.Second)
	before, after, other := compositionARN(1), compositionARN(2), compositionARN(3)

	// Signalled while the job sat in the queue, twice.
	for range 2 {
		if err := api.q.SignalStop(ctx, before); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := wk.q.WatchStop(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, "stop signalled before the watch")

	ch, err = wk.q.WatchStop(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	otherCh, err := wk.q.WatchStop(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.q.SignalStop(ctx, after); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, "stop signalled after the watch")
	select {
	case <-otherCh:
		t.Fatal("a stop for another composition closed the channel")
	case <-time.After(300 * time.Millisecond):
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: channel not closed", what)
	}
}

func TestMalformedMessageGivenUp(t *testing.T) {
	t.Parallel()
	w := newWorker(t, startServer(t), testConfig)
	ctx := testContext(t, 10*time.Second)
	for i, body := range []string{"not json", `{"stageArn":"no composition"}`} {
		if _, err := w.js.Publish(ctx, fmt.Sprintf("%s.bad%d", SubjectPrefix, i), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	arn := compositionARN(1)
	submit(t, w.q, arn)

	c := claim(t, w.q, 5*time.Second)
	if c.Job.Name != arn {
		t.Fatalf("claimed %s, want %s", c.Job.Name, arn)
	}
	if err := c.Done(ctx); err != nil {
		t.Fatal(err)
	}
	waitStats(t, w.q, Stats{})
}

func TestClaimEndsPromptly(t *testing.T) {
	t.Parallel()
	w := newWorker(t, startServer(t), testConfig)

	// Context cancelled while waiting.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	if _, err := w.q.Claim(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("claim: %v, want canceled", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("cancelled claim returned after %v", took)
	}

	// Connection closed while waiting, then already closed.
	time.AfterFunc(200*time.Millisecond, w.nc.Close)
	for range 2 {
		start = time.Now()
		if _, err := w.q.Claim(testContext(t, 10*time.Second)); !errors.Is(err, nats.ErrConnectionClosed) {
			t.Fatalf("claim: %v, want connection closed", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("claim on a closed connection returned after %v", took)
		}
	}
}

func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_, errs[i] = Open(testContext(t, 10*time.Second), js, testConfig)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	// And again, with a changed config: it updates in place.
	w := newWorker(t, s, Config{AckWait: 2 * time.Second, MaxDeliver: 4})
	ci, err := w.q.cons.Info(testContext(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if ci.Config.AckWait != 2*time.Second || ci.Config.MaxDeliver != 4 {
		t.Fatalf("consumer config not updated: ack wait %v, max deliver %d", ci.Config.AckWait, ci.Config.MaxDeliver)
	}
}

func TestTokenIsSubjectSafe(t *testing.T) {
	t.Parallel()
	safe := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	seen := map[string]string{}
	for _, arn := range []string{
		compositionARN(1),
		"arn:aws:ivs:us-west-2:123456789012:composition/c00000000001",
		"arn:aws:ivs:us-east-1:210987654321:composition/c00000000001",
	} {
		tok := Token(arn)
		if !safe.MatchString(tok) {
			t.Errorf("Token(%q) = %q: not subject-safe", arn, tok)
		}
		if prev, ok := seen[tok]; ok {
			t.Errorf("%q and %q share token %q", prev, arn, tok)
		}
		seen[tok] = arn
	}
}

// TestNoGoroutineLeak runs every goroutine-starting path, closes
// everything and checks that the goroutines it started have ended. It does
// not run in parallel: it looks at the whole process's goroutines.
func TestNoGoroutineLeak(t *testing.T) {
	s := startServer(t)
	// The streams and consumers run goroutines inside the server: create
	// them before the baseline.
	setup := newWorker(t, s, testConfig)
	setup.nc.Close()
	// Nothing observable says the server is done starting them: give it a moment.
	time.Sleep(200 * time.Millisecond)
	check := testkit.CheckGoroutines(t)

	func() {
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q, err := Open(ctx, js, testConfig)
		if err != nil {
			t.Fatal(err)
		}
		exerciseEverything(t, ctx, q)
	}()

	check()
}

func exerciseEverything(t *testing.T, ctx context.Context, q *Queue) {
	t.Helper()
	arn := compositionARN(1)
	if err := q.Submit(ctx, Job{Name: arn}); err != nil {
		t.Fatal(err)
	}
	c, err := q.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); c.Heartbeat(hbCtx) }()

	// A watch that sees its stop, and one that ends with its context.
	stopped, err := q.WatchStop(ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, endWatch := context.WithCancel(ctx)
	if _, err := q.WatchStop(watchCtx, compositionARN(2)); err != nil {
		t.Fatal(err)
	}
	if err := q.SignalStop(ctx, arn); err != nil {
		t.Fatal(err)
	}
	<-stopped
	endWatch()

	time.Sleep(testConfig.AckWait / 2) // a heartbeat or so
	if err := c.Done(ctx); err != nil {
		t.Fatal(err)
	}
	stopHeartbeat()
	<-hbDone

	// A claim that waits and is cancelled.
	claimCtx, cancelClaim := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelClaim()
	if _, err := q.Claim(claimCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim: %v, want deadline exceeded", err)
	}
	if _, err := q.Stats(ctx); err != nil {
		t.Fatal(err)
	}
}
