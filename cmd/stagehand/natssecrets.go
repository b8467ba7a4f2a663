package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stagehand-rt/stagehand/internal/natsserver"
)

// A secrets directory (`stagehand nats-secrets`, and serve's embedded NATS
// without the certificates) has one subdirectory per reader, so that each
// can be mounted alone: a worker never sees control's password.
const (
	natsDir    = "nats"    // the NATS nodes': users, ca.crt, node.crt, node.key
	controlDir = "control" // serve's: control.creds, ca.crt
	workerDir  = "worker"  // the workers': worker.creds, ca.crt

	usersFile = "users" // ROLE:PASSWORD lines
	caFile    = "ca.crt"
	nodeCert  = "node.crt" // every NATS node's certificate, for clients and routes
	nodeKey   = "node.key"
)

// roles are the users a secrets directory creates.
var roles = []natsserver.Role{natsserver.RoleControl, natsserver.RoleWorker}

type natsSecretsConfig struct {
	Dir   string
	Hosts []string
}

func parseNATSSecretsFlags(args []string, stderr io.Writer) (natsSecretsConfig, error) {
	var c natsSecretsConfig
	fs := flag.NewFlagSet("stagehand nats-secrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Dir, "dir", "nats-secrets", "`directory` to write the secrets into")
	hosts := fs.String("hosts", "localhost,127.0.0.1", "names and IPs of the NATS nodes, comma-separated, "+
		"put in their certificate")
	const usage = "Usage: stagehand nats-secrets --dir DIR --hosts H1,H2,...\n\n" +
		"Writes what a fleet's NATS needs, one subdirectory per reader: nats/ (users for `stagehand nats " +
		"--users`, node.crt and node.key, one certificate for every node), control/control.creds for serve, " +
		"worker/worker.creds for workers, and the development CA's ca.crt in each. Secrets are mode 0600. " +
		"A directory that has them already is left as it is."
	if err := parseFlags(fs, stderr, usage, args); err != nil {
		return c, err
	}
	for h := range strings.SplitSeq(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.Hosts = append(c.Hosts, h)
		}
	}
	if len(c.Hosts) == 0 {
		return c, errors.New("no --hosts: the certificate needs the nodes' names")
	}
	return c, nil
}

func runNATSSecrets(_ context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseNATSSecretsFlags(args, stderr)
	if err != nil {
		return err
	}
	made, err := writeSecrets(cfg.Dir, cfg.Hosts)
	if err != nil {
		return err
	}
	if !made {
		fmt.Fprintf(stdout, "stagehand: %s has NATS secrets already; left as they are\n", cfg.Dir)
		return nil
	}
	fmt.Fprintf(stdout, "stagehand: NATS users, credentials and certificates for %s written to %s\n",
		strings.Join(cfg.Hosts, ", "), cfg.Dir)
	return nil
}

// writeSecrets writes a secrets directory, with certificates for hosts
// unless there are none, unless it has its users file already; it reports
// whether it wrote one.
func writeSecrets(dir string, hosts []string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, natsDir, usersFile)); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("NATS secrets: %w", err)
	}
	for _, d := range []string{natsDir, controlDir, workerDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return false, fmt.Errorf("NATS secrets: %w", err)
		}
	}
	if len(hosts) > 0 {
		if err := writeCerts(dir, hosts); err != nil {
			return false, err
		}
	}
	var users strings.Builder
	for _, r := range roles {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return false, err
		}
		line := string(r) + ":" + base64.RawURLEncoding.EncodeToString(b) + "\n"
		users.WriteString(line)
		if err := writeSecret(credsFile(dir, r), line); err != nil {
			return false, err
		}
	}
	// The users file last: it says the directory is complete.
	return true, writeSecret(filepath.Join(dir, natsDir, usersFile), users.String())
}

// credsFile is where role's USER:PASSWORD is in a secrets directory.
func credsFile(dir string, r natsserver.Role) string {
	return filepath.Join(dir, string(r), string(r)+".creds")
}

func writeSecret(path, body string) error {
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("NATS secrets: %w", err)
	}
	return nil
}

// readUsers reads a users file: ROLE:PASSWORD lines, # comments.
func readUsers(file string) ([]natsserver.User, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("NATS users: %w", err)
	}
	var us []natsserver.User
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		role, pass, ok := strings.Cut(line, ":")
		if !ok || pass == "" {
			return nil, fmt.Errorf("NATS users %s: want ROLE:PASSWORD lines", file)
		}
		us = append(us, natsserver.User{Role: natsserver.Role(role), Password: pass})
	}
	if len(us) == 0 {
		return nil, fmt.Errorf("NATS users %s: no user", file)
	}
	return us, nil
}

// writeCerts writes a CA (its key is not kept: re-run into a new directory
// to renew) and one certificate for every node, good for serving clients
// and for routes both ways.
func writeCerts(dir string, hosts []string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stagehand NATS CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("NATS CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	node := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "stagehand NATS node"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			node.IPAddresses = append(node.IPAddresses, ip)
		} else {
			node.DNSNames = append(node.DNSNames, h)
		}
	}
	nodeDER, err := x509.CreateCertificate(rand.Reader, node, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("NATS node certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name, typ string
		der       []byte
		mode      os.FileMode
	}{{filepath.Join(natsDir, caFile), "CERTIFICATE", caDER, 0o644},
		{filepath.Join(controlDir, caFile), "CERTIFICATE", caDER, 0o644},
		{filepath.Join(workerDir, caFile), "CERTIFICATE", caDER, 0o644},
		{filepath.Join(natsDir, nodeCert), "CERTIFICATE", nodeDER, 0o644},
		{filepath.Join(natsDir, nodeKey), "PRIVATE KEY", keyDER, 0o600}} {
		b := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(filepath.Join(dir, f.name), b, f.mode); err != nil {
			return fmt.Errorf("NATS secrets: %w", err)
		}
	}
	return nil
}
