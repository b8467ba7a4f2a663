package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-rt/stagehand/ingest"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/store"
)

// ingestFlags are the RTMP(S) ingest's settings in `stagehand serve`.
type ingestFlags struct {
	RTMPAddr  string // plain RTMP (insecureIngest configurations); "" off
	RTMPSAddr string // RTMPS; "" off
	Cert, Key string // RTMPS certificate and key (PEM)
}

func (f *ingestFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.RTMPAddr, "rtmp-addr", "127.0.0.1:1935",
		"address of the RTMP ingest, for ingest configurations with insecureIngest (\"\": off)")
	fs.StringVar(&f.RTMPSAddr, "rtmps-addr", "127.0.0.1:1936", "address of the RTMPS ingest (\"\": off)")
	fs.StringVar(&f.Cert, "ingest-cert", "",
		"RTMPS certificate (PEM, with its chain); with --dev a self-signed one is made when none is given")
	fs.StringVar(&f.Key, "ingest-key", "", "its private key (PEM)")
}

func (f *ingestFlags) validate() []error {
	var errs []error
	if (f.Cert == "") != (f.Key == "") {
		errs = append(errs, errors.New("give both --ingest-cert and --ingest-key"))
	}
	for _, a := range []struct{ flag, addr string }{{"--rtmp-addr", f.RTMPAddr}, {"--rtmps-addr", f.RTMPSAddr}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.flag, a.addr, err))
		}
	}
	return errs
}

// tlsConfig is the RTMPS certificate: the given one, a self-signed one
// with --dev (its PEM written under dataDir for clients to trust), or nil
// (RTMPS off) without either.
func (f *ingestFlags) tlsConfig(dev bool, dataDir string, stdout io.Writer) (*tls.Config, error) {
	if f.Cert != "" {
		return ingest.LoadTLS(f.Cert, f.Key)
	}
	if !dev {
		fmt.Fprintln(stdout,
			"stagehand: RTMPS ingest off: no --ingest-cert/--ingest-key (give them, or --dev for a self-signed certificate)")
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(f.RTMPSAddr)
	cfg, certPEM, fp, err := ingest.SelfSigned("127.0.0.1", "localhost", host)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dataDir, "ingest-cert.pem")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := os.WriteFile(path, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write the self-signed RTMPS certificate: %w", err)
	}
	fmt.Fprintf(stdout,
		"stagehand: RTMPS ingest uses a SELF-SIGNED certificate (--dev), written to %s, SHA-256 %s: encoders must trust it "+
			"or skip verification (ffmpeg does not verify by default)\n", path, fp)
	return cfg, nil
}

// startIngest runs the RTMP(S) ingest until the returned stop is called.
func startIngest(ctx context.Context, cfg serveConfig, st *store.Store, sfu *stage.Server, reg *prometheus.Registry,
	stdout io.Writer, log *slog.Logger) (stop func(), err error) {
	f := cfg.Ingest
	tlsCfg, err := f.tlsConfig(cfg.Dev, cfg.DataDir, stdout)
	if err != nil {
		return nil, err
	}
	ic := ingest.Config{RTMPAddr: f.RTMPAddr, TLS: tlsCfg, Logger: log}
	if tlsCfg != nil {
		ic.RTMPSAddr = f.RTMPSAddr
	}
	if ic.RTMPAddr == "" && ic.RTMPSAddr == "" {
		return func() {}, nil
	}
	srv, err := ingest.New(ic, st, sfu)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(srv.Collectors()...)
	// This process is the deployment's only ingest: configurations left
	// ACTIVE are from a run that died.
	if _, err := srv.ResetStale(ctx); err != nil {
		return nil, err
	}
	if err := srv.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	if a := srv.RTMPAddr(); a != nil {
		fmt.Fprintf(stdout, "stagehand: RTMP ingest at rtmp://%s/app/<stream key> (insecureIngest configurations only)\n", a)
	}
	if a := srv.RTMPSAddr(); a != nil {
		fmt.Fprintf(stdout, "stagehand: RTMPS ingest at rtmps://%s/app/<stream key>\n", a)
	}
	return srv.Close, nil
}
