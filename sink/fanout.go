// Package sink fans one encoded stream out to many destinations (an RTMPS
// channel, HLS recordings), each isolated from the others: every destination
// has its own goroutine and a bounded queue, so a slow or failing one never
// stalls the encoder or its siblings. Each reports its own state, as IVS
// names destination states, and counters.
//
// Back-pressure is a decision: when a destination's queue is full the packet
// is dropped for that destination only, counted, and the destination resumes
// at the next video keyframe so that what it outputs stays decodable. A
// destination whose writer fails is retried with backoff when the writer can
// reopen (a reconnecting RTMP client), resuming on a keyframe too; otherwise,
// or after RetryFor, it is FAILED and discards what it is sent.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"
)

// State is a destination's state, as IVS names it.
type State string

// Destination states.
const (
	StateStarting     State = "STARTING"
	StateActive       State = "ACTIVE"
	StateReconnecting State = "RECONNECTING"
	StateFailed       State = "FAILED"
	StateStopped      State = "STOPPED"
)

// Stream indexes of the packets a fan-out carries.
const (
	StreamVideo = 0
	StreamAudio = 1
)

// Writer is one output. Its methods are called from its destination's
// goroutine only. Write must not keep p after it returns.
type Writer interface {
	Write(ctx context.Context, p *astiav.Packet, stream int) error
	Close(ctx context.Context) error
}

// Reopener is a Writer that can recover from a failed Write by reopening
// its output (reconnecting). Writes resume on the next video keyframe.
type Reopener interface {
	Reopen(ctx context.Context) error
}

// Config configures one destination.
type Config struct {
	Name   string
	Writer Writer
	// QueueSize bounds the packets waiting for this destination; default 256
	// (about 4 s of 30 fps video with its audio).
	QueueSize int
	// RetryFor is how long a failing Reopener is retried before the
	// destination is FAILED; default 60 s.
	RetryFor time.Duration
	// Backoff is the first delay between reopen attempts, doubled up to 10 s; default 500 ms.
	Backoff time.Duration
	// Logger receives the destination's failures and reconnections, with
	// component=sink and its name added; default slog.Default(). Pass one
	// carrying the composition's id.
	Logger *slog.Logger
}

// Status is a snapshot of a destination.
type Status struct {
	Name      string
	State     State
	Packets   uint64 // packets written
	Bytes     uint64 // payload bytes written
	Dropped   uint64 // packets dropped: queue full, or skipped to reach a keyframe
	Failures  uint64 // failed writes and reopen attempts
	LastError string
}

type item struct {
	pkt    *astiav.Packet
	stream int
	key    bool
}

// destination owns one writer, its queue and its goroutine.
type destination struct {
	cfg   Config
	queue chan item
	free  chan *astiav.Packet // packets to reuse; at most QueueSize+1 ever allocated

	state                             atomic.Value // State
	packets, bytes, dropped, failures atomic.Uint64
	lastErr                           atomic.Value // string
	needKey                           bool         // producer side: skipping until a keyframe after a full queue
	waitKey                           bool         // consumer side: skipping until a keyframe after a failure
	closeErr                          error
	log                               *slog.Logger
	closing                           <-chan struct{} // closed when Close begins
}

// Fanout delivers every packet to every destination.
type Fanout struct {
	dests   []*destination
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	closed  bool
	closing chan struct{}
}

// Start starts one goroutine per destination. They run until Close, or
// until ctx is cancelled (then queued packets are discarded).
func Start(ctx context.Context, cfgs ...Config) (*Fanout, error) {
	f := &Fanout{closing: make(chan struct{})}
	for _, c := range cfgs {
		if c.Writer == nil {
			return nil, fmt.Errorf("sink %q: no writer", c.Name)
		}
		if c.QueueSize <= 0 {
			c.QueueSize = 256
		}
		if c.RetryFor <= 0 {
			c.RetryFor = time.Minute
		}
		if c.Backoff <= 0 {
			c.Backoff = 500 * time.Millisecond
		}
		if c.Logger == nil {
			c.Logger = slog.Default()
		}
		d := &destination{cfg: c, queue: make(chan item, c.QueueSize), free: make(chan *astiav.Packet, c.QueueSize+1),
			log: c.Logger.With("component", "sink", "destination", c.Name), closing: f.closing}
		d.state.Store(StateStarting)
		d.lastErr.Store("")
		f.dests = append(f.dests, d)
	}
	ctx, f.cancel = context.WithCancel(ctx)
	for _, d := range f.dests {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			d.run(ctx)
		}()
	}
	return f, nil
}

// Write hands p to every destination without waiting for any of them: each
// takes its own reference to p's data (no copy). The caller keeps p. Write
// and Close are called from one goroutine (the encoder's); Write after
// Close does nothing.
func (f *Fanout) Write(p *astiav.Packet, stream int) {
	if f.closed {
		return
	}
	key := stream == StreamVideo && p.Flags().Has(astiav.PacketFlagKey)
	for _, d := range f.dests {
		d.offer(p, stream, key)
	}
}

// offer queues p for d, or drops it when d's queue is full or d is skipping
// to the next keyframe.
func (d *destination) offer(p *astiav.Packet, stream int, key bool) {
	if d.needKey && stream == StreamVideo {
		if !key {
			d.dropped.Add(1)
			return
		}
		d.needKey = false
	}
	if d.needKey {
		d.dropped.Add(1) // audio before the keyframe video resumes on
		return
	}
	var pkt *astiav.Packet
	select {
	case pkt = <-d.free:
	default:
		pkt = astiav.AllocPacket()
	}
	if err := pkt.Ref(p); err != nil {
		d.recycle(pkt)
		d.dropped.Add(1)
		return
	}
	select {
	case d.queue <- item{pkt, stream, key}:
	default:
		d.recycle(pkt)
		d.dropped.Add(1)
		d.needKey = true
	}
}

func (d *destination) recycle(pkt *astiav.Packet) {
	pkt.Unref()
	select {
	case d.free <- pkt:
	default:
		pkt.Free()
	}
}

func (d *destination) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			d.discardQueue()
			d.closeErr = d.cfg.Writer.Close(context.WithoutCancel(ctx))
			d.finish()
			return
		case it, ok := <-d.queue:
			if !ok {
				d.closeErr = d.cfg.Writer.Close(ctx)
				d.finish()
				return
			}
			if ctx.Err() != nil || d.givenUp() { // stopped: what is queued is discarded
				d.dropped.Add(1)
			} else {
				d.deliver(ctx, it)
			}
			d.recycle(it.pkt)
		}
	}
}

func (d *destination) finish() {
	if d.closeErr != nil {
		d.fail(fmt.Errorf("close: %w", d.closeErr))
	}
	if d.State() != StateFailed {
		d.state.Store(StateStopped)
	}
}

// givenUp reports a destination that was reconnecting when Close began:
// it stops trying (a live channel gains nothing from what is late) so that
// Close does not wait out its retry time.
func (d *destination) givenUp() bool {
	select {
	case <-d.closing:
		return d.State() == StateReconnecting
	default:
		return false
	}
}

// deliver writes one packet, handling failure and recovery.
func (d *destination) deliver(ctx context.Context, it item) {
	switch d.State() {
	case StateFailed:
		d.dropped.Add(1)
		return
	case StateStarting:
		d.state.Store(StateActive)
	}
	if d.waitKey {
		if !it.key {
			d.dropped.Add(1)
			return
		}
		d.waitKey = false
	}
	err := d.cfg.Writer.Write(ctx, it.pkt, it.stream)
	if err == nil {
		d.packets.Add(1)
		d.bytes.Add(uint64(it.pkt.Size()))
		return
	}
	d.failures.Add(1)
	d.lastErr.Store(err.Error())
	r, ok := d.cfg.Writer.(Reopener)
	if !ok || ctx.Err() != nil {
		d.fail(err)
		return
	}
	d.reopen(ctx, r, err)
}

// reopen retries r with exponential backoff until it succeeds, RetryFor
// passes, or ctx ends. Packets queue up meanwhile (and drop when the queue
// fills); writing resumes on a keyframe.
func (d *destination) reopen(ctx context.Context, r Reopener, cause error) {
	d.state.Store(StateReconnecting)
	d.log.Warn("destination failed; reconnecting", "error", cause)
	deadline := time.Now().Add(d.cfg.RetryFor)
	delay := d.cfg.Backoff
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.closing:
			t.Stop()
			d.log.Info("closing while reconnecting; the destination stops", "error", cause)
			return
		case <-t.C:
		}
		err := r.Reopen(ctx)
		if err == nil {
			d.state.Store(StateActive)
			d.waitKey = true
			d.log.Info("destination reconnected")
			return
		}
		d.failures.Add(1)
		d.lastErr.Store(err.Error())
		if time.Now().After(deadline) {
			d.fail(fmt.Errorf("gave up after %s: %w", d.cfg.RetryFor, err))
			return
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func (d *destination) fail(err error) {
	if d.State() != StateFailed {
		d.log.Error("destination failed", "error", err)
	}
	d.lastErr.Store(err.Error())
	d.state.Store(StateFailed)
}

func (d *destination) discardQueue() {
	for {
		select {
		case it, ok := <-d.queue:
			if !ok {
				return
			}
			d.dropped.Add(1)
			d.recycle(it.pkt)
		default:
			return
		}
	}
}

func (d *destination) drainFree() {
	for {
		select {
		case p := <-d.free:
			p.Free()
		default:
			return
		}
	}
}

// State is the destination's current state.
func (d *destination) State() State { return d.state.Load().(State) }

// Status reports every destination, in the order they were configured.
func (f *Fanout) Status() []Status {
	out := make([]Status, len(f.dests))
	for i, d := range f.dests {
		out[i] = Status{
			Name: d.cfg.Name, State: d.State(),
			Packets: d.packets.Load(), Bytes: d.bytes.Load(), Dropped: d.dropped.Load(),
			Failures: d.failures.Load(), LastError: d.lastErr.Load().(string),
		}
	}
	return out
}

// Close lets every destination write what it has queued, closes the
// writers and waits for the goroutines to end. A destination reconnecting
// stops trying and drops its queue. Cancel ctx to stop waiting
// for slow destinations: their queued packets are then discarded. It returns
// the errors of destinations that failed.
func (f *Fanout) Close(ctx context.Context) error {
	if f.closed {
		return nil
	}
	f.closed = true
	close(f.closing)
	for _, d := range f.dests {
		close(d.queue)
	}
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		f.cancel()
		<-done
	}
	f.cancel()
	var errs []error
	for _, d := range f.dests {
		for it := range d.queue { // left by a destination stopped by ctx
			it.pkt.Free()
		}
		d.drainFree()
		if d.State() == StateFailed {
			errs = append(errs, fmt.Errorf("destination %s: %s", d.cfg.Name, d.lastErr.Load().(string)))
		}
	}
	return errors.Join(errs...)
}
