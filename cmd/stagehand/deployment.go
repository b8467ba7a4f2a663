package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/store"
)

// deployment is a process's connection to a Stagehand deployment's NATS
// JetStream: the resource store and the job queue. serve and worker open
// it the same way.
type deployment struct {
	nc    *nats.Conn
	store *store.Store
	queue *jobs.Queue
}

// openDeployment connects to natsURL as client name and opens (creating
// when missing) the store's buckets and the queue with replicas.
func openDeployment(ctx context.Context, natsURL, name string, replicas int) (*deployment, error) {
	nc, err := nats.Connect(natsURL, nats.Name(name), nats.MaxReconnects(-1),
		// A cluster node that goes away: the next one within a second.
		nats.ReconnectWait(500*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", natsURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	openCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// A cluster that is starting has no JetStream leader yet: retry until
	// it elects one.
	for {
		// Each attempt has its own deadline: a request sent before the
		// cluster had a leader may never be answered.
		attemptCtx, cancelAttempt := context.WithTimeout(openCtx, 10*time.Second)
		d, err := open(attemptCtx, nc, js, replicas)
		cancelAttempt()
		if err == nil {
			return d, nil
		}
		select {
		case <-openCtx.Done():
			nc.Close()
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func open(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, replicas int) (*deployment, error) {
	st, err := store.Open(ctx, js, store.Config{Replicas: replicas})
	if err != nil {
		return nil, err
	}
	q, err := jobs.Open(ctx, js, jobs.Config{Replicas: replicas})
	if err != nil {
		return nil, err
	}
	return &deployment{nc: nc, store: st, queue: q}, nil
}

func (d *deployment) close() { d.nc.Close() }
