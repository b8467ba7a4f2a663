package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's
// times: 100 on every Linux architecture Go runs on.
const clockTicks = 100

// sample is one node's figures at one time: from /proc, its CPU-seconds
// (user and system, every thread) and RSS; from its /metrics, its
// subscriber peers, open peer connections, stage rooms and fan-out drops
// (-1 when unread).
type sample struct {
	at                        time.Time
	cpu, rss                  float64 // seconds, bytes
	subs, pcs, rooms, dropped float64
}

// readProc samples a process's CPU and RSS.
func readProc(pid int) (sample, error) {
	s := sample{at: time.Now(), subs: -1, pcs: -1, rooms: -1, dropped: -1}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.cpu, err = parseStat(string(stat)); err != nil {
		return s, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.rss, err = parseStatus(string(status))
	return s, err
}

// parseStat reads utime + stime, in seconds, from /proc/<pid>/stat. The
// command name, in parentheses, may hold spaces and parentheses: the
// fields are counted from the last ')'.
func parseStat(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	// After ") ": state (field 3) ... utime (14), stime (15).
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want 13 or more", len(f))
	}
	var ticks float64
	for _, v := range f[11:13] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		ticks += float64(n)
	}
	return ticks / clockTicks, nil
}

// parseStatus reads VmRSS, in bytes, from /proc/<pid>/status.
func parseStatus(status string) (float64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmRSS %q", v)
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("status: VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("status: no VmRSS")
}

// parseMetrics reads the samples of a Prometheus text exposition, by
// series (the name with its labels as written).
func parseMetrics(text string) map[string]float64 {
	m := map[string]float64{}
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// at is a field's value at t, linear between the samples around it
// (sorted by time); false when t is outside them.
func at(samples []sample, t time.Time, field func(sample) float64) (float64, bool) {
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		if t.Before(a.at) || t.After(b.at) {
			continue
		}
		span := b.at.Sub(a.at).Seconds()
		if span == 0 {
			return field(a), true
		}
		frac := t.Sub(a.at).Seconds() / span
		return field(a) + frac*(field(b)-field(a)), true
	}
	if len(samples) == 1 && samples[0].at.Equal(t) {
		return field(samples[0]), true
	}
	return 0, false
}

// peak is a field's largest value over the samples within [from, to].
func peak(samples []sample, from, to time.Time, field func(sample) float64) float64 {
	m := -1.0
	for _, s := range samples {
		if !s.at.Before(from) && !s.at.After(to) {
			m = max(m, field(s))
		}
	}
	return m
}

// readMachine samples the CPU-seconds every process of the machine used.
func readMachine() (sample, error) {
	s := sample{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	s.cpu, err = parseCPUStat(string(b))
	return s, err
}

// parseCPUStat reads the busy time of all CPUs together, in seconds, from
// /proc/stat's first line: user, nice, system, irq, softirq and steal
// (guest time is within user).
func parseCPUStat(stat string) (float64, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q", line)
	}
	var ticks float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += float64(n)
	}
	return ticks / clockTicks, nil
}
