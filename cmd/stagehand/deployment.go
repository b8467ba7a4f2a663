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
	nc, err := nats.Connect(natsURL, nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", natsURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := store.Open(openCtx, js, store.Config{Replicas: replicas})
	if err != nil {
		nc.Close()
		return nil, err
	}
	q, err := jobs.Open(openCtx, js, jobs.Config{Replicas: replicas})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &deployment{nc: nc, store: st, queue: q}, nil
}

func (d *deployment) close() { d.nc.Close() }
