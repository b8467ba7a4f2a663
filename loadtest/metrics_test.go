package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestScrape(t *testing.T) {
	for _, c := range []struct {
		name, body string
		cpu, rss   float64
		ok         bool
	}{
		{"both", "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\n" +
			"process_cpu_seconds_total 12.5\nprocess_resident_memory_bytes 8.1092608e+07\ngo_goroutines 9\n",
			12.5, 81092608, true},
		{"one missing", "process_cpu_seconds_total 1\n", 0, 0, false},
		{"not a number", "process_cpu_seconds_total x\nprocess_resident_memory_bytes 1\n", 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			s, err := scrape(context.Background(), srv.Client(), srv.URL)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
			if c.ok && (s.cpuSeconds != c.cpu || s.rssBytes != c.rss) {
				t.Errorf("cpu %v rss %v", s.cpuSeconds, s.rssBytes)
			}
		})
	}
}
