package api

import (
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
)

// TestSessionsNewestFirst: list-stage-sessions shows the latest session
// first and pages through the rest in that order, whatever the ids' order.
func TestSessionsNewestFirst(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	sessions := func() []store.Item[ivs.StageSession] {
		var all []store.Item[ivs.StageSession]
		for i, id := range []string{"st-c", "st-a", "st-d", "st-b", "st-e"} {
			// st-a is the newest, st-c the oldest; st-b and st-d started together.
			start := t0.Add(time.Duration([]int{0, 4, 2, 2, 1}[i]) * time.Minute)
			all = append(all, store.Item[ivs.StageSession]{Key: "stage." + id, Value: ivs.StageSession{SessionID: id, StartTime: start}})
		}
		return all
	}
	tests := []struct {
		name  string
		limit int
		want  [][]string // pages
	}{
		{"one page", 50, [][]string{{"st-a", "st-b", "st-d", "st-e", "st-c"}}},
		{"pages of two", 2, [][]string{{"st-a", "st-b"}, {"st-d", "st-e"}, {"st-c"}}},
		{"the current one", 1, [][]string{{"st-a"}, {"st-b"}, {"st-d"}, {"st-e"}, {"st-c"}}},
		{"exact pages", 5, [][]string{{"st-a", "st-b", "st-d", "st-e", "st-c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := page{limit: tt.limit}
			for i, want := range tt.want {
				out, next := newestFirst(sessions(), p)
				var got []string
				for _, s := range out {
					got = append(got, s.SessionID)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("page %d: %v, want %v", i, got, want)
				}
				if last := i == len(tt.want)-1; last != (next == "") {
					t.Fatalf("page %d: next token %q", i, next)
				}
				b, _ := base64.RawURLEncoding.DecodeString(next)
				p.after = string(b)
			}
		})
	}
	if out, next := newestFirst(sessions(), page{after: "st-gone", limit: 10}); len(out) != 0 || next != "" {
		t.Errorf("a stale token: %v %q, want an empty last page", out, next)
	}
}
