// Package testserver starts the real servers integration tests run against
// (nginx with the RTMP module behind stunnel for RTMPS, versitygw for S3) as
// processes bound to 127.0.0.1, and stops them when the test ends. The
// set-up script installs them; a missing one fails the test with the
// command that installs it, rather than skipping it.
package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitListening waits until something accepts TCP connections on port.
func WaitListening(t testing.TB, port int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listening on 127.0.0.1:%d after %s: %v", port, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lookPath finds a server binary or fails the test with how to install it.
func lookPath(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatalf("%s not installed: run scripts/deps.sh (make test does)", names[0])
	return ""
}

// Process is a server process that ends with the test.
type Process struct {
	cmd *exec.Cmd
	log string
}

func start(t testing.TB, logPath string, name string, args ...string) *Process {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary that is killed (a timeout, ^C) takes its servers with
	// it rather than leaving them on their ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	logf.Close()
	p := &Process{cmd: cmd, log: logPath}
	t.Cleanup(p.stop)
	return p
}

// stop kills the process and reaps it; safe to call twice.
func (p *Process) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// SelfSignedCert writes a certificate for 127.0.0.1 and localhost, which is
// its own CA, and its key, into dir.
func SelfSignedCert(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "stagehand test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Sprintf is fmt.Sprintf; kept here so configs read as templates.
var sprintf = fmt.Sprintf

// StartProcess runs a command as a server the test owns: its output goes
// to logPath, and it is killed when the test ends.
func StartProcess(t testing.TB, logPath, name string, args ...string) *Process {
	t.Helper()
	return start(t, logPath, name, args...)
}

// Kill sends SIGKILL (a crash) and reaps the process.
func (p *Process) Kill() { p.stop() }

// Terminate sends SIGTERM and waits up to within for the process to exit;
// it reports whether it did, and kills it if not.
func (p *Process) Terminate(within time.Duration) bool {
	if p.cmd.ProcessState != nil {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-done
		return false
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath is where its output goes.
func (p *Process) LogPath() string { return p.log }
