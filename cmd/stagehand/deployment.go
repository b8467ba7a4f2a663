package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-rt/stagehand/internal/natsserver"
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

// dial is how a process connects to the deployment's NATS.
type dial struct {
	url, name string
	opts      []nats.Option // credentials, TLS
	// worker binds to the buckets and streams control created, leaves the
	// ones a worker may not read closed, and uses the worker inboxes: what
	// the server lets a worker do.
	worker bool
}

// openDeployment connects as d says and opens the store's buckets and the
// queue with replicas, creating the missing ones unless d is a worker's.
func openDeployment(ctx context.Context, d dial, replicas int) (*deployment, error) {
	natsURL := d.url
	opts := append([]nats.Option{nats.Name(d.name), nats.MaxReconnects(-1),
		// A cluster node that goes away: the next one within a second.
		nats.ReconnectWait(500 * time.Millisecond)}, d.opts...)
	if d.worker {
		opts = append(opts, nats.CustomInboxPrefix(natsserver.WorkerInboxPrefix))
	}
	nc, err := nats.Connect(natsURL, opts...)
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
		dep, err := open(attemptCtx, nc, js, replicas, d.worker)
		cancelAttempt()
		if err == nil {
			return dep, nil
		}
		select {
		case <-openCtx.Done():
			nc.Close()
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func open(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, replicas int, worker bool) (*deployment,
	error) {
	sc := store.Config{Replicas: replicas, Bind: worker}
	if worker {
		sc.Without = natsserver.WorkerDeniedTables
	}
	st, err := store.Open(ctx, js, sc)
	if err != nil {
		return nil, err
	}
	q, err := jobs.Open(ctx, js, jobs.Config{Replicas: replicas, Bind: worker})
	if err != nil {
		return nil, err
	}
	return &deployment{nc: nc, store: st, queue: q}, nil
}

func (d *deployment) close() { d.nc.Close() }
