// Package testkit holds the checks many packages' tests share: that a
// test's goroutines ended, and waiting for a condition to come true.
package testkit

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goroutineWait is how long CheckEnded and CheckNoneRunning wait for
// goroutines to end. It is generous because ending is often asynchronous
// (a closed connection's reader notices on its next read); a passing check
// returns as soon as they have ended. The package's own tests shorten it.
var goroutineWait = 10 * time.Second

// Ignore says, from its stack, whether a goroutine started during a test is
// none of the check's concern.
type Ignore func(stack string) bool

// Running ignores the goroutines whose stack contains fn, such as a
// function name of a library's pool that outlives the test by design.
func Running(fn string) Ignore {
	return func(stack string) bool { return strings.Contains(stack, fn) }
}

// IdleHTTPConns ignores the goroutines of HTTP connections kept alive
// between requests, on either side: the client's Transport and the server
// keep them for the next request, and close them on their own schedule. A
// server connection running a handler is not idle.
func IdleHTTPConns(stack string) bool {
	// A client's: not one making a request (roundTrip), only the loops.
	if strings.Contains(stack, "net/http.(*persistConn).readLoop") ||
		strings.Contains(stack, "net/http.(*persistConn).writeLoop") {
		return true
	}
	return strings.Contains(stack, "net/http.(*conn).serve") && !strings.Contains(stack, "ServeHTTP")
}

// Goroutines is a snapshot of the goroutines running at one moment, to
// tell those started since. Goroutines are told apart by ID, never reused,
// so a goroutine of an earlier test that ends meanwhile, or one of the
// runtime's that comes and goes, does not skew the result as a count would.
// Tests using it must not run in parallel with others that start
// goroutines.
type Goroutines struct {
	before map[uint64]bool
	ignore []Ignore
}

// SnapshotGoroutines records the goroutines running now. Goroutines started
// later that one of ignore ignores are not reported.
func SnapshotGoroutines(ignore ...Ignore) *Goroutines {
	g := &Goroutines{before: map[uint64]bool{}, ignore: ignore}
	for _, s := range stacks() {
		g.before[s.id] = true
	}
	return g
}

// Started returns the stacks of the goroutines running now that were not
// running at the snapshot, except the caller's and the ignored ones. A
// goroutine not yet scheduled may show only a wrapper function; its
// "created by" line names the function that started it.
func (g *Goroutines) Started() []string {
	all := stacks()
	var out []string
	// The first stack is the caller's.
	for i, s := range all {
		if i == 0 || g.before[s.id] || g.ignored(s.text) {
			continue
		}
		out = append(out, s.text)
	}
	return out
}

func (g *Goroutines) ignored(stack string) bool {
	for _, ig := range g.ignore {
		if ig(stack) {
			return true
		}
	}
	return false
}

// CheckEnded waits up to 10 seconds for the goroutines started since the
// snapshot to end, and fails tb with the stacks of those left.
func (g *Goroutines) CheckEnded(tb testing.TB) {
	tb.Helper()
	waitNone(tb, "goroutines started during the test", g.Started)
}

// CheckNoneRunning waits up to 10 seconds for every goroutine but the
// caller's whose stack contains one of code (such as a package path) to
// end, and fails tb with the stacks of those left. It suits a test sharing
// its process with servers that outlive it, where when a goroutine started
// does not tell whose it is.
func CheckNoneRunning(tb testing.TB, code ...string) {
	tb.Helper()
	waitNone(tb, "goroutines running "+strings.Join(code, " or "), func() []string {
		var out []string
		for i, s := range stacks() {
			if i > 0 && slices.ContainsFunc(code, func(c string) bool { return strings.Contains(s.text, c) }) {
				out = append(out, s.text)
			}
		}
		return out
	})
}

// waitNone polls list until it is empty, for up to goroutineWait.
func waitNone(tb testing.TB, what string, list func() []string) {
	tb.Helper()
	var left []string
	for deadline := time.Now().Add(goroutineWait); ; time.Sleep(10 * time.Millisecond) {
		if left = list(); len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	tb.Errorf("%d %s still run after %v:\n\n%s", len(left), what, goroutineWait, strings.Join(left, "\n\n"))
}

// CheckGoroutines snapshots the goroutines running now and returns the
// check that those started since have ended: defer it, or call it once
// everything is closed (a deferred call runs before the test's cleanups).
func CheckGoroutines(tb testing.TB, ignore ...Ignore) func() {
	tb.Helper()
	g := SnapshotGoroutines(ignore...)
	return func() {
		tb.Helper()
		g.CheckEnded(tb)
	}
}

type stack struct {
	id   uint64
	text string
}

// stacks returns every goroutine's stack, the caller's first, as
// runtime.Stack writes them.
func stacks() []stack {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []stack
	for _, text := range strings.Split(strings.TrimSpace(string(buf)), "\n\n") {
		// Each starts "goroutine 42 [chan receive]:".
		rest, ok := strings.CutPrefix(text, "goroutine ")
		if !ok {
			continue
		}
		idText, _, _ := strings.Cut(rest, " ")
		id, err := strconv.ParseUint(idText, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, stack{id, text})
	}
	return out
}
