package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// natsClientFlags are how serve and worker log in to the fleet's NATS and
// verify it. A password never comes from a flag, which ps shows: it comes
// from a file the flag names, or from the environment.
type natsClientFlags struct {
	CredsFile string // one line USER:PASSWORD
	CAFile    string // CA of the NATS servers' certificates: TLS on
	Insecure  bool   // allow no credentials, or plain text to a remote NATS
}

func (n *natsClientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.CredsFile, "nats-creds", os.Getenv("STAGEHAND_NATS_CREDS"),
		"`file` holding USER:PASSWORD this process logs in to NATS with (env STAGEHAND_NATS_CREDS; or "+
			"STAGEHAND_NATS_USER and STAGEHAND_NATS_PASSWORD)")
	fs.StringVar(&n.CAFile, "nats-tls-ca", os.Getenv("STAGEHAND_NATS_TLS_CA"),
		"CA `file` that verifies the NATS servers; connects with TLS (env STAGEHAND_NATS_TLS_CA)")
	fs.BoolVar(&n.Insecure, "nats-insecure", false,
		"allow NATS without credentials, or without TLS to a non-loopback server (tests, trusted networks)")
}

// validate refuses, unless Insecure, a NATS at urls that this process
// would reach without credentials, or in plain text off this machine.
func (n *natsClientFlags) validate(urls string) []error {
	if urls == "" || n.Insecure {
		return nil
	}
	var errs []error
	if n.CredsFile == "" && os.Getenv("STAGEHAND_NATS_USER") == "" {
		errs = append(errs, errors.New("no NATS credentials: give --nats-creds (or STAGEHAND_NATS_USER and "+
			"STAGEHAND_NATS_PASSWORD), or --nats-insecure"))
	}
	if n.CAFile == "" && !allLoopback(urls) {
		errs = append(errs, errors.New("NATS off this machine without TLS: give --nats-tls-ca, or --nats-insecure"))
	}
	return errs
}

func allLoopback(urls string) bool {
	for u := range strings.SplitSeq(urls, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil {
			return false
		}
		host := p.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// options are the nats.go options that log in and verify the server.
func (n *natsClientFlags) options() ([]nats.Option, error) {
	var opts []nats.Option
	user, pass := os.Getenv("STAGEHAND_NATS_USER"), os.Getenv("STAGEHAND_NATS_PASSWORD")
	if n.CredsFile != "" {
		var err error
		if user, pass, err = readCreds(n.CredsFile); err != nil {
			return nil, err
		}
	}
	if user != "" {
		opts = append(opts, nats.UserInfo(user, pass))
	}
	if n.CAFile != "" {
		opts = append(opts, nats.RootCAs(n.CAFile))
	}
	return opts, nil
}

// readCreds reads a USER:PASSWORD file.
func readCreds(file string) (user, pass string, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", fmt.Errorf("NATS credentials: %w", err)
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok || user == "" || pass == "" {
		return "", "", fmt.Errorf("NATS credentials %s: want one line USER:PASSWORD", file)
	}
	return user, pass, nil
}
