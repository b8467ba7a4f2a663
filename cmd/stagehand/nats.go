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
	const usage = "Usage: stagehand nats --name N --routes URLS [flags]\n\n" +
		"Runs one node of the NATS JetStream cluster a fleet shares (three nodes: R3 buckets and " +
		"streams)."
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
	if len(c.Routes) == 0 {
		return c, errors.New("no --routes: a cluster node needs the other nodes' route URLs")
	}
	return c, nil
}

func runNATS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseNATSFlags(args, stderr)
	if err != nil {
		return err
	}
	ns, err := natsserver.Start(natsserver.Config{Addr: cfg.Addr, StoreDir: cfg.StoreDir, Name: cfg.Name,
		MonitorAddr: cfg.MonitorAddr,
		Cluster:     &natsserver.ClusterConfig{Name: cfg.Cluster, Addr: cfg.ClusterAddr, Routes: cfg.Routes}})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stagehand: NATS node %s of cluster %s on %s (routes on %s)\n", cfg.Name, cfg.Cluster,
		ns.ClientURL(), cfg.ClusterAddr)
	<-ctx.Done()
	ns.Shutdown()
	fmt.Fprintln(stdout, "stagehand: NATS node stopped")
	return nil
}
