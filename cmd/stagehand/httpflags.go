package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/stagehand-rt/stagehand/ingest"
	"github.com/stagehand-rt/stagehand/internal/hostguard"
)

// httpFlags are how serve's HTTP listeners (the API and the stage) face
// the network: TLS, the host names they answer to, and where /metrics is.
// selfSignedCertFile is where --dev --tls writes its certificate, under
// the data directory: clients (and serve's embedded worker) trust it.
const selfSignedCertFile = "https-cert.pem"

type httpFlags struct {
	Cert, Key    string   // HTTPS certificate (PEM, with its chain) and key
	TLS          bool     // HTTPS with a self-signed certificate under --dev
	AllowedHosts []string // host names served besides the configured ones
	MetricsAddr  string   // /metrics on its own address; empty: on the API's
	Pprof        bool     // /debug/pprof/ beside /metrics on MetricsAddr
}

func (f *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.Cert, "tls-cert", "", "HTTPS certificate (PEM, with its chain) of the API and the stage")
	fs.StringVar(&f.Key, "tls-key", "", "its private key (PEM)")
	fs.BoolVar(&f.TLS, "tls", false,
		"serve the API and the stage over HTTPS; with --dev and no --tls-cert a self-signed certificate is made")
	fs.Func("allowed-hosts", "comma-separated host `names` the API and the stage answer to besides localhost, IP "+
		"addresses and the hosts of --stage-url, --node-url and the listen addresses (DNS rebinding guard)",
		func(v string) error {
			for h := range strings.SplitSeq(v, ",") {
				if h = strings.TrimSpace(h); h != "" {
					f.AllowedHosts = append(f.AllowedHosts, h)
				}
			}
			return nil
		})
	fs.StringVar(&f.MetricsAddr, "metrics-addr", "",
		"serve GET /metrics on this address (host:port) only; default: on the API address")
	fs.BoolVar(&f.Pprof, "pprof", false,
		"serve Go's profiles (/debug/pprof/) on the --metrics-addr address, which it requires; keep that address private")
}

func (f *httpFlags) validate(c *serveConfig) []error {
	var errs []error
	if (f.Cert == "") != (f.Key == "") {
		errs = append(errs, errors.New("give both --tls-cert and --tls-key"))
	}
	if f.TLS && f.Cert == "" && !c.Dev {
		errs = append(errs, errors.New("--tls without --tls-cert/--tls-key needs --dev (a self-signed certificate)"))
	}
	if f.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-addr %q: %w", f.MetricsAddr, err))
		}
	}
	if f.Pprof && f.MetricsAddr == "" {
		errs = append(errs, errors.New("--pprof needs --metrics-addr: profiles are never served on the API's address"))
	}
	// Unsigned requests from anywhere would be anyone's API.
	if c.NoAuth && !loopback(c.APIAddr) {
		errs = append(errs, fmt.Errorf("--no-auth on %s: unsigned requests are accepted only on a loopback "+
			"--api-addr (127.0.0.1, ::1, localhost)", c.APIAddr))
	}
	return errs
}

// https reports whether the listeners serve TLS.
func (f *httpFlags) https() bool { return f.TLS || f.Cert != "" }

// tlsConfig is the listeners' certificate: the given one, a self-signed
// one (--dev --tls; its PEM written under dataDir for clients to trust),
// or nil (plain HTTP).
func (f *httpFlags) tlsConfig(hosts []string, dataDir string, stdout io.Writer) (*tls.Config, error) {
	if f.Cert != "" {
		return ingest.LoadTLS(f.Cert, f.Key)
	}
	if !f.TLS {
		return nil, nil
	}
	cfg, certPEM, fp, err := ingest.SelfSigned(append([]string{"127.0.0.1", "localhost"}, hosts...)...)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dataDir, selfSignedCertFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := os.WriteFile(path, certPEM, 0o644); err != nil { // a certificate is public
		return nil, fmt.Errorf("write the self-signed HTTPS certificate: %w", err)
	}
	fmt.Fprintf(stdout, "stagehand: the API and the stage use a SELF-SIGNED certificate (--dev --tls), written to %s, "+
		"SHA-256 %s: clients must trust it\n", path, fp)
	return cfg, nil
}

// certFile is the HTTPS certificate serve presents: --tls-cert, or the one
// --dev --tls made; "" over plain HTTP.
func (c *serveConfig) certFile() string {
	switch {
	case c.HTTP.Cert != "":
		return c.HTTP.Cert
	case c.HTTP.TLS:
		return filepath.Join(c.DataDir, selfSignedCertFile)
	}
	return ""
}

// selfClient is an HTTP client that trusts serve's own certificate besides
// the system's roots: the demo's API calls and participants use it.
func (c *serveConfig) selfClient() (*http.Client, error) {
	file := c.certFile()
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the HTTPS certificate: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// hosts are the names the listeners answer to (and the self-signed
// certificate names): the hosts of the public URLs and listen addresses,
// and --allowed-hosts, without ports.
func (c *serveConfig) hosts() []string {
	var hs []string
	for _, s := range append([]string{c.APIAddr, c.StageAddr}, c.HTTP.AllowedHosts...) {
		if h, _, err := net.SplitHostPort(s); err == nil {
			s = h
		}
		hs = append(hs, s)
	}
	for _, s := range []string{c.StageURL, c.NodeURL} {
		if u, err := url.Parse(s); err == nil && u.Hostname() != "" {
			hs = append(hs, u.Hostname())
		}
	}
	return hs
}

// hostGuard refuses requests for other hosts (DNS rebinding).
func (c *serveConfig) hostGuard() *hostguard.Guard { return hostguard.New(c.hosts()...) }

// warnExposed says loudly that --dev's demo credentials are served beyond
// this machine.
func (c *serveConfig) warnExposed(stdout io.Writer, log *slog.Logger) {
	if !c.Dev || loopback(c.APIAddr) {
		return
	}
	fmt.Fprintf(stdout, "stagehand: WARNING: --dev on %s, a non-loopback address: anyone who reaches it can use "+
		"the demo credentials; give real ones, or listen on 127.0.0.1\n", c.APIAddr)
	log.Warn("--dev on a non-loopback address: the demo credentials are served to the network", "apiAddr", c.APIAddr)
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
