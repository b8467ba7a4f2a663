package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/internal/refusal"
)

// TestBackoff: delays double from 250 ms to 5 s, each in the upper half
// of its step; a Retry-After raises a delay but never past 5 s.
func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		jitter float64
		floor  time.Duration
		want   []time.Duration
	}{
		{"least jitter", 0, 0, []time.Duration{125 * ms, 250 * ms, 500 * ms, time.Second, 2 * time.Second,
			2500 * ms, 2500 * ms}},
		{"most jitter", 1, 0, []time.Duration{250 * ms, 500 * ms, time.Second, 2 * time.Second, 4 * time.Second,
			5 * time.Second, 5 * time.Second}},
		{"Retry-After 3 s", 0, 3 * time.Second, []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second,
			3 * time.Second, 3 * time.Second, 3 * time.Second}},
		{"Retry-After 1 min", 0.5, time.Minute, []time.Duration{5 * time.Second, 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &backoff{next: firstRetry, jitter: func() float64 { return tc.jitter }}
			for i, want := range tc.want {
				if got := b.delay(tc.floor); got != want {
					t.Errorf("delay %d = %v, want %v", i, got, want)
				}
			}
			b.reset()
			if got := b.delay(0); got > firstRetry || got < firstRetry/2 {
				t.Errorf("after reset: %v", got)
			}
		})
	}
}

// TestBackoffRandom: with real jitter every delay stays within its bounds.
func TestBackoffRandom(t *testing.T) {
	b := newBackoff()
	step := firstRetry
	for i := range 50 {
		d := b.delay(0)
		if d < step/2 || d > step || d > maxRetry {
			t.Fatalf("delay %d = %v, want within [%v, %v]", i, d, step/2, step)
		}
		step = min(2*step, maxRetry)
	}
}

func TestRetryable(t *testing.T) {
	refusedWith := func(status int) error {
		return fmt.Errorf("stage refused: %d %w", status, refusal.New(status, "no"))
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"503 moving", refusedWith(http.StatusServiceUnavailable), true},
		{"502 from a proxy", refusedWith(http.StatusBadGateway), true},
		{"409 still held", refusedWith(http.StatusConflict), true},
		{"429", refusedWith(http.StatusTooManyRequests), true},
		{"401 expired", refusedWith(http.StatusUnauthorized), false},
		{"403 revoked", refusedWith(http.StatusForbidden), false},
		{"404 stage deleted", refusedWith(http.StatusNotFound), false},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"cancelled", fmt.Errorf("POST: %w", context.Canceled), false},
		{"Retry-After", &retryAfterError{error: refusedWith(http.StatusServiceUnavailable), after: time.Second}, true},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("%s: retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "2": 2 * time.Second, "-1": 0,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := retryAfter(h); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
}

// TestWait: a wait ends at the deadline, however long the delay.
func TestWait(t *testing.T) {
	start := time.Now()
	if !wait(context.Background(), time.Hour, start.Add(50*time.Millisecond)) {
		t.Error("wait before the deadline reported it passed")
	}
	if time.Since(start) > 10*time.Second {
		t.Error("wait overran the deadline")
	}
	if wait(context.Background(), time.Millisecond, start) {
		t.Error("wait after the deadline went on")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if wait(ctx, time.Hour, start.Add(time.Hour)) {
		t.Error("wait went on after its context ended")
	}
}
