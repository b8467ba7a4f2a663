// Package natsserver runs an embedded NATS server with JetStream: the
// default store and job queue of `stagehand serve`, the server that tests
// run against, and a node of a JetStream cluster (`stagehand nats`). It
// keeps JetStream's file store under the directory it is given. With Users
// it lets in only the roles' users, each with its permissions (auth.go);
// with TLS, clients connect in TLS and routes are mutual TLS.
package natsserver

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config says where the embedded server listens and stores.
type Config struct {
	// Addr is host:port; port 0 picks a free one. Default 127.0.0.1:0.
	Addr string
	// StoreDir holds JetStream's file store; it survives restarts.
	StoreDir string
	// Name identifies the server in logs and cluster views. Default "stagehand".
	// Every node of a cluster needs its own.
	Name string
	// Cluster, when set, makes the server a node of a JetStream cluster.
	Cluster *ClusterConfig
	// MonitorAddr, when set, serves NATS's HTTP monitoring (/healthz,
	// /jsz) on host:port, for health checks.
	MonitorAddr string
	// Users, when set, are the only clients accepted, each with its role's
	// permissions; without them any client may do anything.
	Users []User
	// TLS, when set, makes clients connect with TLS to this certificate.
	TLS *TLSFiles
}

// ClusterConfig joins the server to a cluster of nodes that route to each
// other. JetStream replicates streams and buckets across them (R3 on three
// nodes) and keeps serving while a majority is up.
type ClusterConfig struct {
	// Name of the cluster, the same on every node.
	Name string
	// Addr is the host:port other nodes route to.
	Addr string
	// Routes are the nats-route://host:port URLs of the other nodes (this
	// node's own is ignored by the server).
	Routes []string
	// TLS, when set, makes routes mutual TLS: every node presents a
	// certificate the CA signed, and refuses a peer that does not.
	TLS *TLSFiles
}

// Server is a running embedded NATS server.
type Server struct {
	ns *server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsserver: StoreDir is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Name == "" {
		cfg.Name = "stagehand"
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("natsserver: address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("natsserver: port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else if err := startError(cfg.Addr); err != nil {
		// The server would only log this and never become ready.
		return nil, err
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// No leafnodes; HTTP monitoring only when asked for.
	}
	if cfg.Cluster != nil {
		if err := cluster(opts, *cfg.Cluster); err != nil {
			return nil, err
		}
	}
	if err := secure(opts, cfg); err != nil {
		return nil, err
	}
	if cfg.MonitorAddr != "" {
		h, p, err := net.SplitHostPort(cfg.MonitorAddr)
		if err != nil {
			return nil, fmt.Errorf("natsserver: monitor address %q: %w", cfg.MonitorAddr, err)
		}
		if opts.HTTPPort, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("natsserver: monitor port %q: %w", p, err)
		}
		opts.HTTPHost = h
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		if err := startError(cfg.Addr); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("natsserver: not ready on %s after 10s", cfg.Addr)
	}
	return &Server{ns: ns}, nil
}

func cluster(opts *server.Options, c ClusterConfig) error {
	host, portStr, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("natsserver: cluster address %q: %w", c.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("natsserver: cluster port %q: %w", portStr, err)
	}
	if c.Name == "" {
		return errors.New("natsserver: a cluster needs a name")
	}
	// Explicit routes are retried forever at a steady pace: a restarted
	// node rejoins within a second.
	opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port}
	if c.TLS != nil {
		if opts.Cluster.TLSConfig, err = tlsConfig(*c.TLS, true); err != nil {
			return err
		}
		opts.Cluster.TLSTimeout = 5
	}
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return fmt.Errorf("natsserver: route %q: want nats-route://host:port", r)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

// secure adds the users and the client TLS to opts.
func secure(opts *server.Options, cfg Config) error {
	var err error
	if len(cfg.Users) > 0 {
		if opts.Users, err = users(cfg.Users); err != nil {
			return err
		}
	}
	if cfg.TLS != nil {
		if opts.TLSConfig, err = tlsConfig(*cfg.TLS, false); err != nil {
			return err
		}
		opts.TLS, opts.TLSTimeout = true, 5
	}
	return nil
}

// startError reports why the address could not be used, when that is why.
func startError(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("natsserver: cannot listen on %s: %w", addr, err)
	}
	l.Close()
	return nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// Routes is the number of cluster routes the server has open.
func (s *Server) Routes() int { return s.ns.NumRoutes() }

// ClusterAddr is where the server accepts routes, once it listens.
func (s *Server) ClusterAddr() string {
	if a := s.ns.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}
