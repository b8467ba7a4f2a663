package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/stagehand-rt/stagehand/internal/natsserver"
)

func TestNATSRefusesAnInsecureFleet(t *testing.T) {
	t.Setenv("STAGEHAND_NATS_USERS", "")
	routes := []string{"--routes", "nats-route://127.0.0.1:6222"}
	tls := []string{"--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca"}
	for _, tc := range []struct {
		args []string
		want string // "" when it parses
	}{
		{routes, "--insecure"},
		{slicesOf(routes, tls), "--insecure"},
		{append(slicesOf(routes), "--users", "u"), "--insecure"},
		{append(slicesOf(routes), "--users", "u", "--tls-cert", "c"), "together"},
		{append(slicesOf(routes, tls), "--users", "u"), ""},
		{append(slicesOf(routes), "--insecure"), ""},
	} {
		_, err := parseNATSFlags(tc.args, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("nats %v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("nats %v: %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

func slicesOf(ss ...[]string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

// TestNATSSecrets: nats-secrets writes each reader's files, secrets 0600,
// and leaves a complete directory alone.
func TestNATSSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	var out bytes.Buffer
	if err := runNATSSecrets(t.Context(), []string{"--dir", dir, "--hosts", "nats1,127.0.0.1"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"nats/users": 0o600, "nats/node.key": 0o600, "nats/node.crt": 0o644,
		"nats/ca.crt": 0o644, "control/control.creds": 0o600, "control/ca.crt": 0o644, "worker/worker.creds": 0o600,
		"worker/ca.crt": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v; want mode %v", name, fi, err, mode)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "worker", "control.creds")); err == nil {
		t.Error("the workers' directory holds control's password")
	}
	users, err := readUsers(filepath.Join(dir, "nats", "users"))
	if err != nil || len(users) != 2 {
		t.Fatalf("users: %v %v", users, err)
	}
	user, pass, err := readCreds(filepath.Join(dir, "worker", "worker.creds"))
	if err != nil || user != "worker" || pass != users[1].Password {
		t.Errorf("worker.creds: %s %s %v; users %v", user, pass, err, users)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "nats", "users"))
	out.Reset()
	if err := runNATSSecrets(t.Context(), []string{"--dir", dir}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "nats", "users"))
	if !bytes.Equal(before, after) || !strings.Contains(out.String(), "left as they are") {
		t.Errorf("a second run rewrote the secrets: %s", out.String())
	}
}

// TestServeEmbeddedNATSNeedsLogin: the NATS of `serve` refuses a client
// without the password serve generated, and takes the worker's.
func TestServeEmbeddedNATSNeedsLogin(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	startServe(t, "--dev", "--no-worker", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0",
		"--nats-addr", natsAddr, "--data-dir", dir)
	if nc, err := nats.Connect("nats://"+natsAddr, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("the embedded NATS took a client without credentials")
	}
	creds := filepath.Join(dir, "nats-secrets", "worker", "worker.creds")
	if fi, err := os.Stat(creds); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", creds, fi, err)
	}
	user, pass, err := readCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://"+natsAddr, nats.UserInfo(user, pass),
		nats.CustomInboxPrefix(natsserver.WorkerInboxPrefix))
	if err != nil {
		t.Fatalf("worker login: %v", err)
	}
	nc.Close()
}
