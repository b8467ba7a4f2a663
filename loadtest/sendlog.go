package loadtest

import (
	"sync"
	"time"
)

// sendLogSize bounds a publisher's send log: about 17 s of frames at 30 fps,
// far beyond any latency worth measuring.
const sendLogSize = 512

// sendLog is when a publisher sent each recent video frame, keyed by RTP
// timestamp. Timestamps are base + n·step, so frame n has slot n mod size.
type sendLog struct {
	base, step uint32
	mu         sync.Mutex
	slots      [sendLogSize]struct {
		ts uint32
		at int64 // unix nanos; 0 for an empty slot
	}
}

func (l *sendLog) record(ts uint32, at time.Time) {
	n := (ts - l.base) / l.step
	l.mu.Lock()
	s := &l.slots[n%sendLogSize]
	s.ts, s.at = ts, at.UnixNano()
	l.mu.Unlock()
}

// sentAt is when the frame of ts was sent; false for a timestamp not sent
// or sent too long ago.
func (l *sendLog) sentAt(ts uint32) (time.Time, bool) {
	n := (ts - l.base) / l.step
	l.mu.Lock()
	s := l.slots[n%sendLogSize]
	l.mu.Unlock()
	if s.at == 0 || s.ts != ts {
		return time.Time{}, false
	}
	return time.Unix(0, s.at), true
}
