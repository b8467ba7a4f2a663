// Package securitytest is the attack suite (`make test-security`, part of
// `make test`): each attack is tried against real processes and servers,
// and must fail with nothing written, served or leaked. Its tests record
// every attack with Attack; the suite prints how many were tried and how
// many succeeded.
package securitytest

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
)

var (
	mu      sync.Mutex
	attacks []result
)

type result struct {
	name      string
	succeeded bool // the attack got through: the test failed
}

// Attack runs one attack as a subtest of t: try must fail the test when
// the attack gets through. It is recorded for the summary.
func Attack(t *testing.T, name string, try func(t *testing.T)) {
	t.Helper()
	ok := t.Run(name, try)
	mu.Lock()
	defer mu.Unlock()
	attacks = append(attacks, result{name: t.Name() + "/" + name, succeeded: !ok})
}

// Summary writes the attacks tried and how many succeeded; it reports
// whether none did.
func Summary(w io.Writer) bool {
	mu.Lock()
	defer mu.Unlock()
	got := 0
	for _, a := range attacks {
		if a.succeeded {
			got++
		}
	}
	fmt.Fprintf(w, "%d attacks tried, %d succeeded\n", len(attacks), got)
	sorted := slices.Clone(attacks)
	slices.SortFunc(sorted, func(a, b result) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	for _, a := range sorted {
		state := "refused"
		if a.succeeded {
			state = "SUCCEEDED"
		}
		fmt.Fprintf(w, "  %-9s %s\n", state, a.name)
	}
	return got == 0
}
