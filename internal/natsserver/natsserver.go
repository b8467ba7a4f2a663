// Package natsserver runs an embedded NATS server with JetStream: the
// default store and job queue of `stagehand serve`, and the server that
// tests run against. It listens on loopback only and keeps JetStream's file
// store under the directory it is given.
package natsserver

import (
	"errors"
	"fmt"
	"net"
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
	Name string
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
		// No HTTP monitoring, no cluster, no leafnodes: loopback client port only.
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
