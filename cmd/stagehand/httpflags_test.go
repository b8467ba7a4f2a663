package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeHTTPS: --dev --tls serves the API over HTTPS with a self-signed
// certificate written for clients, refuses foreign Host headers, and
// --metrics-addr moves /metrics off the API address, with Go's profiles
// beside it under --pprof, never on the API's.
func TestServeHTTPS(t *testing.T) {
	dir := t.TempDir()
	metrics := freeAddr(t)
	u, _, out := startServeOutput(t, "--dev", "--tls", "--no-worker", "--api-addr", "127.0.0.1:0",
		"--stage-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--data-dir", dir, "--metrics-addr", metrics,
		"--pprof")
	if !strings.Contains(out.String(), "API at https://") {
		t.Errorf("serve did not announce HTTPS:\n%s", out)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "https-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	api := "https" + strings.TrimPrefix(u, "http")
	for _, tc := range []struct {
		method, url, host string
		want              int
	}{
		{http.MethodPost, api + "/ListStages", "", http.StatusForbidden}, // reached the API: unsigned
		{http.MethodPost, api + "/ListStages", "rebound.example:8690", http.StatusMisdirectedRequest},
		{http.MethodGet, api + "/metrics", "", http.StatusNotFound},
		{http.MethodGet, "http://" + metrics + "/metrics", "", http.StatusOK},
		{http.MethodGet, "http://" + metrics + "/debug/pprof/goroutine?debug=1", "", http.StatusOK},
		{http.MethodGet, api + "/debug/pprof/goroutine?debug=1", "", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, tc.url, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s (Host %q) = %d; want %d", tc.method, tc.url, tc.host, resp.StatusCode, tc.want)
		}
	}
	if _, err := http.Get(api + "/metrics"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the certificate: %v; want a certificate error", err)
	}
}

func TestServeHosts(t *testing.T) {
	c := serveConfig{APIAddr: "127.0.0.1:8690", StageAddr: "[::1]:8691", StageURL: "https://stage.example.com:443/",
		NodeURL: "http://node-1.internal:8691", HTTP: httpFlags{AllowedHosts: []string{"api", "lb.example:8443"}}}
	got := strings.Join(c.hosts(), " ")
	if want := "127.0.0.1 ::1 api lb.example stage.example.com node-1.internal"; got != want {
		t.Errorf("hosts = %q; want %q", got, want)
	}
	g := c.hostGuard()
	for host, ok := range map[string]bool{"stage.example.com": true, "node-1.internal:8691": true, "api:8690": true,
		"lb.example": true, "evil.example": false} {
		if g.Allows(host) != ok {
			t.Errorf("Allows(%q) = %v; want %v", host, !ok, ok)
		}
	}
}

// TestServeDevExposedWarns: --dev on a non-loopback address starts, and
// says loudly that the demo credentials are served to the network.
func TestServeDevExposedWarns(t *testing.T) {
	_, stop, out := startServeOutput(t, "--dev", "--no-worker", "--api-addr", "0.0.0.0:0",
		"--stage-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	stop()
	if !strings.Contains(out.String(), "WARNING: --dev on 0.0.0.0:0") {
		t.Errorf("no warning:\n%s", out)
	}
}
