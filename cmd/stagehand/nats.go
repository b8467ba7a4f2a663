package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/stagehand-rt/stagehand/internal/natsserver"
)

// natsConfig is `stagehand nats`: one node of a NATS JetStream cluster for
// a fleet, from the same binary (the server embedded in serve, clustered).
type natsConfig struct {
	Addr, ClusterAddr, Cluster, Name, StoreDir, MonitorAddr string
	Routes                                                  []string
	UsersFile                                               string
	TLS                                                     natsserver.TLSFiles
	Insecure                                                bool
}

func parseNATSFlags(args []string, stderr io.Writer) (natsConfig, error) {
	var c natsConfig
	fs := flag.NewFlagSet("stagehand nats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:4222", "client `host:port`")
	fs.StringVar(&c.ClusterAddr, "cluster-addr", "127.0.0.1:6222", "`host:port` other nodes route to")
	fs.StringVar(&c.Cluster, "cluster", "stagehand", "cluster name, the same on every node")
	fs.StringVar(&c.Name, "name", "", "this node's name, unique in the cluster (default: hostname)")
	fs.StringVar(&c.StoreDir, "store-dir", "stagehand-nats", "JetStream file store (survives restarts)")
	fs.StringVar(&c.MonitorAddr, "monitor-addr", "",
		"`host:port` of NATS's HTTP monitoring (/healthz) for health checks (default: none)")
	routes := fs.String("routes", "", "the other nodes' `nats-route://host:port` URLs, comma-separated")
	fs.StringVar(&c.UsersFile, "users", os.Getenv("STAGEHAND_NATS_USERS"),
		"`file` of the users clients log in as, ROLE:PASSWORD lines, roles control and worker "+
			"(env STAGEHAND_NATS_USERS; see stagehand nats-secrets)")
	fs.StringVar(&c.TLS.Cert, "tls-cert", "", "this node's certificate `file` (PEM), for clients and routes")
	fs.StringVar(&c.TLS.Key, "tls-key", "", "its private key `file` (PEM)")
	fs.StringVar(&c.TLS.CA, "tls-ca", "", "CA `file` (PEM) that signed every node's certificate: routes are mutual TLS")
	fs.BoolVar(&c.Insecure, "insecure", false,
		"run without --users or without TLS: any client that reaches the ports reads the signing key")
	const usage = "Usage: stagehand nats --name N --routes URLS --users FILE --tls-cert F --tls-key F --tls-ca F " +
		"[flags]\n\n" +
		"Runs one node of the NATS JetStream cluster a fleet shares (three nodes: R3 buckets and " +
		"streams). It refuses to start without users and TLS on clients and routes unless --insecure is given: " +
		"the store holds the token-signing key. `stagehand nats-secrets` writes development ones."
	if err := parseFlags(fs, stderr, usage, args); err != nil {
		return c, err
	}
	for r := range strings.SplitSeq(*routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			c.Routes = append(c.Routes, r)
		}
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	var errs []error
	if len(c.Routes) == 0 {
		errs = append(errs, errors.New("no --routes: a cluster node needs the other nodes' route URLs"))
	}
	tls := c.TLS.Cert != "" || c.TLS.Key != "" || c.TLS.CA != ""
	if tls && (c.TLS.Cert == "" || c.TLS.Key == "" || c.TLS.CA == "") {
		errs = append(errs, errors.New("TLS needs --tls-cert, --tls-key and --tls-ca together"))
	}
	if !c.Insecure && (c.UsersFile == "" || !tls) {
		errs = append(errs, errors.New("a fleet's NATS needs --users and --tls-cert, --tls-key, --tls-ca "+
			"(stagehand nats-secrets writes them), or --insecure"))
	}
	return c, errors.Join(errs...)
}

func runNATS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseNATSFlags(args, stderr)
	if err != nil {
		return err
	}
	sc := natsserver.Config{Addr: cfg.Addr, StoreDir: cfg.StoreDir, Name: cfg.Name, MonitorAddr: cfg.MonitorAddr,
		Cluster: &natsserver.ClusterConfig{Name: cfg.Cluster, Addr: cfg.ClusterAddr, Routes: cfg.Routes}}
	if cfg.UsersFile != "" {
		if sc.Users, err = readUsers(cfg.UsersFile); err != nil {
			return err
		}
	}
	if cfg.TLS.Cert != "" {
		sc.TLS, sc.Cluster.TLS = &cfg.TLS, &cfg.TLS
	}
	ns, err := natsserver.Start(sc)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stagehand: NATS node %s of cluster %s on %s (routes on %s); %s\n", cfg.Name, cfg.Cluster,
		ns.ClientURL(), cfg.ClusterAddr, security(sc))
	<-ctx.Done()
	ns.Shutdown()
	fmt.Fprintln(stdout, "stagehand: NATS node stopped")
	return nil
}

// security says how the node lets clients and peers in.
func security(c natsserver.Config) string {
	users, tls := "any client (no --users)", "no TLS"
	if len(c.Users) > 0 {
		users = fmt.Sprintf("%d users", len(c.Users))
	}
	if c.TLS != nil {
		tls = "TLS on clients, mutual TLS on routes"
	}
	return users + ", " + tls
}
