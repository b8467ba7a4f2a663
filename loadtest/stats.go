package loadtest

import (
	"math"
	"slices"
	"sync"
	"time"
)

// freezeGap is the longest pause between video frames that is not a freeze.
const freezeGap = 500 * time.Millisecond

// seqCounter counts the RTP packets of one stream that arrived and those
// that should have, from the sequence numbers: wrap-around is unwrapped
// and a late (reordered) packet fills its gap. A packet that never arrives
// stays counted as lost; duplicates (retransmissions of packets that did
// arrive) are not told apart.
type seqCounter struct {
	started        bool
	first, highest int64 // extended sequence numbers
	received       int64
}

func (c *seqCounter) add(seq uint16) {
	if !c.started {
		c.started = true
		c.first, c.highest, c.received = int64(seq), int64(seq), 1
		return
	}
	ext := c.highest + int64(int16(seq-uint16(c.highest)))
	c.highest = max(c.highest, ext)
	c.first = min(c.first, ext)
	c.received++
}

func (c *seqCounter) expected() int64 {
	if !c.started {
		return 0
	}
	return c.highest - c.first + 1
}

func (c *seqCounter) lost() int64 { return max(0, c.expected()-c.received) }

// freezeDetector counts pauses over freezeGap between a subscriber's video
// frames, after the first frame.
type freezeDetector struct {
	last    time.Time
	freezes int
	longest time.Duration
}

func (f *freezeDetector) frame(at time.Time) {
	if !f.last.IsZero() {
		f.gap(at.Sub(f.last))
	}
	f.last = at
}

// end counts a stream that stopped before the run did.
func (f *freezeDetector) end(at time.Time) {
	if !f.last.IsZero() {
		f.gap(at.Sub(f.last))
	}
}

func (f *freezeDetector) gap(d time.Duration) {
	if d > freezeGap {
		f.freezes++
	}
	f.longest = max(f.longest, d)
}

// percentile is the p-th percentile (0..100) of sorted values, by the
// nearest rank; 0 for none.
func percentile[T int64 | float64 | time.Duration](sorted []T, p float64) T {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// trackStats is what one subscriber received of one publisher's track.
type trackStats struct {
	video bool
	log   *sendLog // the publisher's, for latency

	mu        sync.Mutex
	seq       seqCounter
	bytes     int64 // payload
	first     time.Time
	lastTS    uint32
	haveTS    bool
	freeze    freezeDetector
	latencies []time.Duration // per video frame
	win       window          // since the last ramp step
}

// window is a track's figures since a mark.
type window struct {
	expected0, received0 int64
	latencies            []time.Duration
}

func (t *trackStats) packet(seq uint16, ts uint32, payload int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.first.IsZero() {
		t.first = at
	}
	t.seq.add(seq)
	t.bytes += int64(payload)
	if !t.video || t.haveTS && int32(ts-t.lastTS) <= 0 {
		return
	}
	// The first packet of a newer frame.
	t.lastTS, t.haveTS = ts, true
	t.freeze.frame(at)
	if sent, ok := t.log.sentAt(ts); ok {
		d := at.Sub(sent)
		t.latencies = append(t.latencies, d)
		t.win.latencies = append(t.win.latencies, d)
	}
}

// mark starts a new window and returns the last one's latencies, and its
// expected and received packets.
func (t *trackStats) mark() (lat []time.Duration, expected, received int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.win
	e, r := t.seq.expected(), t.seq.received
	t.win = window{expected0: e, received0: r}
	return w.latencies, e - w.expected0, r - w.received0
}

// trackTotals is a finished track's figures.
type trackTotals struct {
	video          bool
	bytes          int64
	first          time.Time
	expected, lost int64
	freezes        int
	latencies      []time.Duration
}

func (t *trackStats) totals(end time.Time) trackTotals {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.freeze
	if t.video {
		f.end(end)
	}
	return trackTotals{video: t.video, bytes: t.bytes, first: t.first, expected: t.seq.expected(),
		lost: t.seq.lost(), freezes: f.freezes, latencies: slices.Clone(t.latencies)}
}
