package loadtest

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	for _, c := range []struct {
		v    []int64
		p    float64
		want int64
	}{
		{nil, 50, 0},
		{[]int64{7}, 95, 7},
		{[]int64{1, 2, 3, 4}, 50, 2},
		{[]int64{1, 2, 3, 4}, 100, 4},
		{[]int64{1, 2, 3, 4}, 0, 1},
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 95, 19},
	} {
		if got := percentile(c.v, c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %d, want %d", c.v, c.p, got, c.want)
		}
	}
}

func TestSeqCounter(t *testing.T) {
	for _, c := range []struct {
		name           string
		seq            []uint16
		expected, lost int64
	}{
		{"none", nil, 0, 0},
		{"in order", []uint16{10, 11, 12, 13}, 4, 0},
		{"a gap", []uint16{10, 11, 14}, 5, 2},
		{"wrap-around", []uint16{65534, 65535, 0, 1}, 4, 0},
		{"a gap across the wrap", []uint16{65534, 1}, 4, 2},
		{"reordered", []uint16{10, 12, 11, 13}, 4, 0},
		{"reordered across the wrap", []uint16{65535, 1, 0}, 3, 0},
		{"late before the first", []uint16{10, 11, 9}, 3, 0},
		{"many wraps", wraps(3), 3*65536 + 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s seqCounter
			for _, q := range c.seq {
				s.add(q)
			}
			if s.expected() != c.expected || s.lost() != c.lost {
				t.Errorf("expected %d lost %d, want %d and %d", s.expected(), s.lost(), c.expected, c.lost)
			}
		})
	}
}

func wraps(n int) []uint16 {
	out := make([]uint16, 0, n*65536+1)
	for i := range n*65536 + 1 {
		out = append(out, uint16(i))
	}
	return out
}

func TestFreezeDetector(t *testing.T) {
	t0 := time.Unix(100, 0)
	ms := func(v ...int) []time.Time {
		var out []time.Time
		for _, m := range v {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	for _, c := range []struct {
		name    string
		frames  []time.Time
		end     time.Time
		freezes int
	}{
		{"smooth", ms(0, 33, 66, 100), t0.Add(120 * time.Millisecond), 0},
		{"no frames", nil, t0.Add(time.Second), 0},
		{"exactly 500 ms is no freeze", ms(0, 500), t0.Add(510 * time.Millisecond), 0},
		{"one gap", ms(0, 33, 600, 633), t0.Add(640 * time.Millisecond), 1},
		{"two gaps", ms(0, 501, 1100), t0.Add(1100 * time.Millisecond), 2},
		{"stopped before the end", ms(0, 33), t0.Add(2 * time.Second), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var f freezeDetector
			for _, at := range c.frames {
				f.frame(at)
			}
			f.end(c.end)
			if f.freezes != c.freezes {
				t.Errorf("freezes = %d, want %d", f.freezes, c.freezes)
			}
		})
	}
}

func TestSendLog(t *testing.T) {
	l := sendLog{base: 0xffffff00, step: 3000}
	t0 := time.Unix(5, 0)
	for n := range uint32(600) {
		l.record(l.base+n*l.step, t0.Add(time.Duration(n)*time.Millisecond))
	}
	if at, ok := l.sentAt(l.base + 599*3000); !ok || !at.Equal(t0.Add(599*time.Millisecond)) {
		t.Errorf("frame 599 sent at %v %v", at, ok)
	}
	if _, ok := l.sentAt(l.base + 10*3000); ok {
		t.Error("frame 10 is still in a log of 512")
	}
	if _, ok := l.sentAt(l.base + 599*3000 + 1); ok {
		t.Error("a timestamp never sent was found")
	}
}

// TestTrackStats: latency from the first packet of each frame, loss and
// payload bytes.
func TestTrackStats(t *testing.T) {
	l := &sendLog{base: 1000, step: 3000}
	t0 := time.Unix(5, 0)
	l.record(1000, t0)
	l.record(4000, t0.Add(33*time.Millisecond))
	ts := &trackStats{video: true, log: l}
	ts.packet(1, 1000, 100, t0.Add(10*time.Millisecond))
	ts.packet(2, 1000, 100, t0.Add(20*time.Millisecond))
	ts.packet(4, 4000, 100, t0.Add(50*time.Millisecond))
	tt := ts.totals(t0.Add(60 * time.Millisecond))
	want := []time.Duration{10 * time.Millisecond, 17 * time.Millisecond}
	if len(tt.latencies) != 2 || tt.latencies[0] != want[0] || tt.latencies[1] != want[1] {
		t.Errorf("latencies = %v, want %v", tt.latencies, want)
	}
	if tt.expected != 4 || tt.lost != 1 || tt.bytes != 300 {
		t.Errorf("expected %d lost %d bytes %d", tt.expected, tt.lost, tt.bytes)
	}
}
