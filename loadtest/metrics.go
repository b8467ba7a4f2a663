package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverSample is the server's process figures at one time.
type serverSample struct {
	at         time.Time
	cpuSeconds float64
	rssBytes   float64
}

// scrape reads process_cpu_seconds_total and process_resident_memory_bytes
// from a Prometheus text endpoint.
func scrape(ctx context.Context, hc *http.Client, url string) (serverSample, error) {
	s := serverSample{at: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, fmt.Errorf("metrics %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("metrics %s: %s", url, resp.Status)
	}
	var found int
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		var dst *float64
		switch {
		case !ok:
			continue
		case name == "process_cpu_seconds_total":
			dst = &s.cpuSeconds
		case name == "process_resident_memory_bytes":
			dst = &s.rssBytes
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
			return s, fmt.Errorf("metrics %s: %s: %w", url, name, err)
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("metrics %s: %w", url, err)
	}
	if found < 2 {
		return s, fmt.Errorf("metrics %s: no process_cpu_seconds_total or process_resident_memory_bytes", url)
	}
	return s, nil
}

// selfCPU is the CPU time this process has used, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
