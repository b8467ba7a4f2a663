package loadtest

import (
	"context"
	"fmt"
	"time"
)

// progress rewrites one status line on cfg.Progress every second until ctx
// ends, and follows the server's memory.
func (r *runner) progress(ctx context.Context, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastBytes int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			if r.cfg.Progress != nil {
				fmt.Fprintln(r.cfg.Progress)
			}
			return
		case <-t.C:
		}
		_, _ = r.scrape(ctx)
		if r.cfg.Progress == nil {
			continue
		}
		bytes := r.receivedBytes()
		now := time.Now()
		rate := float64(bytes-lastBytes) * 8 / now.Sub(last).Seconds() / 1e6
		lastBytes, last = bytes, now
		r.mu.Lock()
		pubs, subs, started := len(r.pubs), r.subJoins, r.subCount
		r.mu.Unlock()
		fmt.Fprintf(r.cfg.Progress, "\r%6.1fs  publishers %d/%d  subscribers %d/%d  failures %d  received %.1f Mbit/s ",
			time.Since(start).Seconds(), pubs, r.cfg.Publishers, subs, max(started, r.cfg.Subscribers),
			r.failureTotal(), rate)
	}
}

func (r *runner) receivedBytes() int64 {
	var n int64
	for _, s := range r.subscribers() {
		for _, t := range s.snapshotTracks() {
			t.mu.Lock()
			n += t.bytes
			t.mu.Unlock()
		}
	}
	return n
}
