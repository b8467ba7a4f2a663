package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Backoff bounds of every reconnecting client: the first retry comes
// quickly (a drained node's stage is usually placed again within a
// second), later ones no more often than every 5 s.
const (
	firstRetry      = 250 * time.Millisecond
	maxRetry        = 5 * time.Second
	defaultGiveUp   = 60 * time.Second
	deleteOldWithin = 2 * time.Second // the best-effort DELETE of a replaced session
)

// Reconnect says how a Publisher or Follow gets back on the stage after
// losing the node that served it (drained, killed, or unreachable).
type Reconnect struct {
	// Off makes a loss final: Done closes (Follow returns) at once, as
	// with a single stage server that is never replaced.
	Off bool
	// Within bounds one outage: when the stage could not be reached again
	// for this long, reconnecting gives up. Default 60 s.
	Within time.Duration
	// OnReconnect, when set, is called after each reconnection with the
	// attempts it took and the time since the loss was noticed.
	OnReconnect func(attempts int, took time.Duration)
}

func (r Reconnect) within() time.Duration {
	if r.Within > 0 {
		return r.Within
	}
	return defaultGiveUp
}

// backoff spaces the attempts of one outage: firstRetry doubling up to
// maxRetry, each delay drawn from its upper half ("equal jitter") so that
// the participants of a drained node do not all come back at once.
type backoff struct {
	next   time.Duration
	jitter func() float64 // in [0, 1); rand.Float64 unless a test fixes it
}

func newBackoff() *backoff { return &backoff{next: firstRetry, jitter: rand.Float64} }

// delay returns the wait before the next attempt, at least floor (a
// server's Retry-After) but never more than maxRetry.
func (b *backoff) delay(floor time.Duration) time.Duration {
	d := b.next/2 + time.Duration(b.jitter()*float64(b.next/2))
	b.next = min(2*b.next, maxRetry)
	return min(max(d, floor), maxRetry)
}

// reset starts over after a success.
func (b *backoff) reset() { b.next = firstRetry }

// wait sleeps for d, or less if deadline comes first; false if ctx ended
// or the deadline has passed.
func wait(ctx context.Context, d time.Duration, deadline time.Time) bool {
	left := time.Until(deadline)
	if left <= 0 {
		return false
	}
	t := time.NewTimer(min(d, left))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryable tells a failure that another attempt can cure (the stage is
// moving: 5xx, a refused or reset connection, a timeout) from a refusal
// that it cannot (4xx: a revoked or expired token, a deleted stage). 409 is
// retryable: the stage still holds this participant's earlier session.
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status >= http.StatusInternalServerError || se.Status == http.StatusConflict ||
			se.Status == http.StatusTooManyRequests
	}
	return !errors.Is(err, context.Canceled)
}

// retryAfterError carries a 503's Retry-After with its refusal.
type retryAfterError struct {
	error
	after time.Duration
}

func (e *retryAfterError) Unwrap() error { return e.error }

// retryAfter reads a Retry-After of delay-seconds form (what a stage node
// sends); 0 when absent or an HTTP date.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// floorOf is the wait a failure asks for, if any.
func floorOf(err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after
	}
	return 0
}
