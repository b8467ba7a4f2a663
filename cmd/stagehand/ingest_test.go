package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestServeIngest: `serve --dev` runs the RTMP and RTMPS ingest, RTMPS
// with a self-signed certificate it writes under the data directory and
// says so.
func TestServeIngest(t *testing.T) {
	dir := t.TempDir()
	_, stop, out := startServeOutput(t, "--dev", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0",
		"--nats-addr", "127.0.0.1:0", "--no-worker", "--data-dir", dir)
	defer stop()
	for _, re := range []string{
		`RTMPS ingest uses a SELF-SIGNED certificate \(--dev\), written to .*ingest-cert\.pem, SHA-256 [0-9A-F:]{95}`,
		`RTMP ingest at rtmp://127\.0\.0\.1:\d+/app/<stream key>`,
		`RTMPS ingest at rtmps://127\.0\.0\.1:\d+/app/<stream key>`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("serve did not print %s:\n%s", re, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "ingest-cert.pem")); err != nil || len(b) == 0 {
		t.Errorf("certificate file: %v", err)
	}
}
