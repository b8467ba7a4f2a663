package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// stopSignal is the value of a key in StopBucket.
type stopSignal struct {
	CompositionARN string    `json:"compositionArn"`
	SignalledAt    time.Time `json:"signalledAt"`
}

// SignalStop asks the worker that runs the composition, wherever it runs,
// to stop it. The signal is durable for StopTTL: a worker that starts
// watching later, after a queue wait or a hand-off, still sees it.
// Signalling a composition twice is not an error.
func (q *Queue) SignalStop(ctx context.Context, compositionARN string) error {
	if compositionARN == "" {
		return errors.New("jobs: signal stop: empty composition ARN")
	}
	b, err := json.Marshal(stopSignal{CompositionARN: compositionARN, SignalledAt: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("jobs: signal stop %s: encode: %w", compositionARN, err)
	}
	// Create rather than Put: the first signal stands and the key keeps a
	// single revision however often StopComposition is retried.
	_, err = q.stops.Create(ctx, Token(compositionARN), b)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("jobs: signal stop %s: %w", compositionARN, err)
	}
	return nil
}

// WatchStop returns a channel that closes when a stop is signalled for the
// composition, or at once if one was signalled before. The watch, and its
// goroutine, end with ctx; the channel then stays open unless a stop was
// seen. It also stays open if the connection closes.
func (q *Queue) WatchStop(ctx context.Context, compositionARN string) (<-chan struct{}, error) {
	if compositionARN == "" {
		return nil, errors.New("jobs: watch stop: empty composition ARN")
	}
	// The client ties the watch's subscription to wctx with a goroutine of
	// its own; cancelling wctx once the watch is over ends that one too.
	wctx, cancel := context.WithCancel(ctx)
	w, err := q.stops.Watch(wctx, Token(compositionARN))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("jobs: watch stop %s: %w", compositionARN, err)
	}
	stopped := make(chan struct{})
	go func() {
		defer cancel()
		watchStop(wctx, w, stopped)
	}()
	return stopped, nil
}

// watchStop closes stopped on the first stop signal it sees and stops w
// when it returns: on that signal, at the end of ctx, or when w closes.
func watchStop(ctx context.Context, w jetstream.KeyWatcher, stopped chan<- struct{}) {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			// nil marks the end of the initial values; deletes and purges
			// (TTL expiry) are not signals.
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				close(stopped)
				return
			}
		}
	}
}
