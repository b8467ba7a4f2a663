package testserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// S3 is versitygw, an S3 gateway over a directory, on 127.0.0.1.
type S3 struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Root      string // the directory behind it: <Root>/<bucket>/<key>
	port      int
	proc      *Process
	bin       string
	t         testing.TB
}

// StartS3 starts versitygw; it stops when the test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := filepath.Join(goBin(), "versitygw")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("versitygw not installed at %s: run scripts/deps.sh (make test does)", bin)
	}
	s := &S3{AccessKey: "stagehandtest", SecretKey: "stagehand-test-secret", Root: t.TempDir(), port: FreePort(t),
		bin: bin, t: t}
	s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(s.port)
	s.Start()
	return s
}

// Start (re)starts the server after Stop.
func (s *S3) Start() {
	s.t.Helper()
	logFile := filepath.Join(s.Root, "..", "versitygw-"+strconv.FormatInt(time.Now().UnixNano(), 10)+".log")
	s.proc = start(s.t, logFile, s.bin, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--port", "127.0.0.1:"+strconv.Itoa(s.port), "posix", "--nometa", s.Root)
	WaitListening(s.t, s.port, 15*time.Second)
}

// Stop kills the server: an object-store outage.
func (s *S3) Stop() { s.proc.stop() }

func goBin() string {
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		return filepath.Join(string(trimNL(out)), "bin")
	}
	return filepath.Join(os.Getenv("HOME"), "go", "bin")
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
