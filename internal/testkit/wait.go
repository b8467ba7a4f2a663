package testkit

import (
	"errors"
	"testing"
	"time"
)

// WaitFor calls cond every interval until it returns nil, and fails tb
// fatally if that has not happened within total. cond's error says what is
// not yet true; the failure shows the last one.
func WaitFor(tb testing.TB, total, interval time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(total)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not within %v: %v", total, err)
			return
		}
		time.Sleep(interval)
	}
}

// Until turns a condition with nothing more to say than what it waits for
// into one for WaitFor.
func Until(what string, cond func() bool) func() error {
	err := errors.New("still waiting for " + what)
	return func() error {
		if cond() {
			return nil
		}
		return err
	}
}
