package main

import (
	"math"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	const tail = " S 1 2 3 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 1234 5678 99"
	for _, c := range []struct {
		name, stat string
		want       float64
		err        bool
	}{
		{"plain", "42 (stagehand)" + tail, 3.0, false},
		{"spaces and parentheses in the name", "42 (a (b) c)" + tail, 3.0, false},
		{"no name", "42 stagehand S 1", 0, true},
		{"short", "42 (stagehand) S 1 2 3", 0, true},
		{"not a number", "42 (x) S 1 2 3 0 -1 4194560 100 0 0 0 x 50 0", 0, true},
	} {
		got, err := parseStat(c.stat)
		if (err != nil) != c.err || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: parseStat = %v, %v; want %v (error %v)", c.name, got, err, c.want, c.err)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for _, c := range []struct {
		name, status string
		want         float64
		err          bool
	}{
		{"VmRSS", "Name:\tstagehand\nVmPeak:\t  900 kB\nVmRSS:\t  2048 kB\nThreads:\t9\n", 2048 * 1024, false},
		{"none", "Name:\tstagehand\n", 0, true},
		{"other unit", "VmRSS:\t 2 MB\n", 0, true},
		{"not a number", "VmRSS:\t x kB\n", 0, true},
	} {
		got, err := parseStatus(c.status)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%s: parseStatus = %v, %v; want %v (error %v)", c.name, got, err, c.want, c.err)
		}
	}
}

// TestReadProc reads this test's own process.
func TestReadProc(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil || s.rss <= 0 || s.cpu < 0 {
		t.Fatalf("readProc = %+v, %v", s, err)
	}
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics("# HELP x y\n# TYPE x gauge\nstagehand_stage_rooms 1\n" +
		"stagehand_stage_peers{kind=\"subscribe\"} 300\nbroken\nprocess_cpu_seconds_total 1.5e+01\nbad x\n")
	for k, want := range map[string]float64{"stagehand_stage_rooms": 1, `stagehand_stage_peers{kind="subscribe"}`: 300,
		"process_cpu_seconds_total": 15} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if len(m) != 3 {
		t.Errorf("parseMetrics = %v, want 3 series", m)
	}
}

func TestAt(t *testing.T) {
	t0 := time.Unix(1000, 0)
	samples := []sample{{at: t0, cpu: 1}, {at: t0.Add(time.Second), cpu: 2}, {at: t0.Add(3 * time.Second), cpu: 6}}
	cpu := func(s sample) float64 { return s.cpu }
	for _, c := range []struct {
		name string
		t    time.Time
		want float64
		ok   bool
	}{
		{"first sample", t0, 1, true},
		{"between the first two", t0.Add(500 * time.Millisecond), 1.5, true},
		{"on a sample", t0.Add(time.Second), 2, true},
		{"between the last two", t0.Add(2 * time.Second), 4, true},
		{"last sample", t0.Add(3 * time.Second), 6, true},
		{"before", t0.Add(-time.Millisecond), 0, false},
		{"after", t0.Add(4 * time.Second), 0, false},
	} {
		got, ok := at(samples, c.t, cpu)
		if ok != c.ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: at = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	if _, ok := at(nil, t0, cpu); ok {
		t.Error("at with no samples is ok")
	}
}

func TestPeak(t *testing.T) {
	t0 := time.Unix(1000, 0)
	samples := []sample{{at: t0, subs: 9}, {at: t0.Add(time.Second), subs: 3}, {at: t0.Add(2 * time.Second), subs: 5}}
	subs := func(s sample) float64 { return s.subs }
	for _, c := range []struct {
		name     string
		from, to time.Time
		want     float64
	}{
		{"all", t0, t0.Add(2 * time.Second), 9},
		{"after the first", t0.Add(time.Millisecond), t0.Add(2 * time.Second), 5},
		{"none within", t0.Add(3 * time.Second), t0.Add(4 * time.Second), -1},
	} {
		if got := peak(samples, c.from, c.to, subs); got != c.want {
			t.Errorf("%s: peak = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseCPUStat(t *testing.T) {
	for _, c := range []struct {
		name, stat string
		want       float64
		err        bool
	}{
		{"busy", "cpu  100 20 30 5000 40 5 6 7 0 0\ncpu0 50 10 15 2500 20 2 3 3 0 0\n", 1.68, false},
		{"older kernel, 8 fields", "cpu  100 20 30 5000 40 5 6 7\n", 1.68, false},
		{"a CPU line first", "cpu0 1 2 3 4 5 6 7 8 9\n", 0, true},
		{"short", "cpu  1 2 3\n", 0, true},
		{"not a number", "cpu  x 20 30 5000 40 5 6 7 0 0\n", 0, true},
	} {
		got, err := parseCPUStat(c.stat)
		if (err != nil) != c.err || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: parseCPUStat = %v, %v; want %v (error %v)", c.name, got, err, c.want, c.err)
		}
	}
}
