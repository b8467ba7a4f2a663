// Package worker runs the queue's jobs within its capacity. For a
// composition it turns the IVS resources into the composition engine's
// settings (package engine), joins the stage as a subscriber
// (stage/client.Follow), decodes every publisher (trackdecode) into the
// engine, which composes, encodes and fans out in real time, and records
// the composition's states in the store (STARTING → ACTIVE → STOPPED, or
// FAILED with a reason). For a participant recording it runs
// recording.Run, which records that one participant.
//
// Files by role: job.go (claims, capacity, heartbeats, settling), claims.go
// (a job delivered again to the worker that runs it), compose.go (one run of
// a composition), settings.go (IVS resources → engine settings), tracks.go
// (the stage's participants and tracks), state.go (states in the store),
// recording.go and spool.go (recordings that outlive a worker), idle.go,
// participant.go, reaper.go, metrics.go.
//
// Destinations: a channel goes to the RTMP(S) URL configured for its ARN;
// an S3 destination is recorded as HLS with thumbnails into
// <BucketsDir>/<bucket>/<recording prefix>/ (a local object store, keys as
// in S3) or, with Config.S3, uploaded to S3 through a bounded spool. A
// worker that resumes a composition another left continues its recording.
// Reap fails the jobs that ran out of attempts.
package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/store"
)

// Config configures a worker.
type Config struct {
	// ID names the worker in compositions it runs; default host:pid.
	ID string
	// Capacity is how many 1080p30 composites run at once (a 720p30 one
	// counts 0.44, see cost); default one per two CPUs, at least 1.
	Capacity int
	// BucketsDir holds the local object store of S3 destinations, when
	// S3 is nil.
	BucketsDir string
	// S3, when set, is the S3 server S3 destinations upload to; their
	// files wait in SpoolDir until stored.
	S3       *upload.ClientConfig
	SpoolDir string
	// Channels maps IVS channel ARNs to RTMP(S) ingest URLs.
	Channels map[string]string
	// RTMPSCAFile verifies RTMPS servers with this CA bundle instead of the
	// system's.
	RTMPSCAFile string
	// ICEIPs restricts the addresses the worker's subscriptions offer.
	ICEIPs []string
	// StageCAFile verifies an HTTPS stage with this CA bundle (or the
	// stage's self-signed certificate) besides the system's roots.
	StageCAFile string
	// IdleTimeout stops a composition whose stage has had no publisher for
	// this long (it shows the background meanwhile). Default 10 minutes;
	// negative: never.
	IdleTimeout time.Duration
	// Heartbeat is how often a running job's claim is renewed; default 3 s.
	Heartbeat time.Duration
	// SpoolLimit bounds the bytes of segments waiting in SpoolDir for the
	// object store; a recording that would pass it fails. Default 8 GiB.
	SpoolLimit int64
	// RTMPRetryFor is how long a channel destination that lost its RTMP(S)
	// server reconnects before it is FAILED (the recordings go on).
	// Default 60 s.
	RTMPRetryFor time.Duration
	// ResumeReadTimeout bounds how long a resumed composition retries
	// reading its recording's playlist from the object store before it
	// records into a new rendition folder instead. Default 20 s.
	ResumeReadTimeout time.Duration
	Logger            *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if c.Capacity <= 0 {
		c.Capacity = max(1, runtime.NumCPU()/2)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 3 * time.Second
	}
	if c.SpoolLimit <= 0 {
		c.SpoolLimit = DefaultSpoolLimit
	}
	if c.RTMPRetryFor <= 0 {
		c.RTMPRetryFor = DefaultRTMPRetryFor
	}
	if c.ResumeReadTimeout <= 0 {
		c.ResumeReadTimeout = 20 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// DefaultIdleTimeout is how long a composition outlives the last
// publisher of its stage.
const DefaultIdleTimeout = 10 * time.Minute

// DefaultRTMPRetryFor is how long a channel destination reconnects before
// it is FAILED.
const DefaultRTMPRetryFor = 60 * time.Second

// Worker claims and runs compositions.
type Worker struct {
	cfg     Config
	store   *store.Store
	queue   *jobs.Queue
	tokens  Tokens
	log     *slog.Logger
	budget  *budget
	metrics *metrics
	spool   *spool

	stageCAs *x509.CertPool // nil: the system's roots

	heldMu sync.Mutex
	held   map[string]*held // the jobs running here, by name

	drainOnce sync.Once
	draining  chan struct{} // closed by Drain

	// recS3 is the S3 client of participant recordings (participant.go).
	recS3Once sync.Once
	recS3     *s3.Client
}

// Tokens mints the worker's own SUBSCRIBE tokens: tokenservice.Client
// asks control for them, so that a worker never holds the signing key;
// tokenservice.Minter signs them in a process that does.
type Tokens interface {
	CompositionToken(ctx context.Context, compositionID string) (string, error)
	RecordingToken(ctx context.Context, stageID, participantID string) (string, error)
}

// New creates a worker; tokens mints its subscribe tokens.
func New(cfg Config, st *store.Store, q *jobs.Queue, tokens Tokens) (*Worker, error) {
	cfg = cfg.withDefaults()
	if cfg.S3 == nil && cfg.BucketsDir == "" {
		return nil, errors.New("worker: S3 destinations need an S3 server or a BucketsDir")
	}
	if cfg.S3 != nil && cfg.SpoolDir == "" {
		return nil, errors.New("worker: uploads to S3 need a SpoolDir")
	}
	w := &Worker{cfg: cfg, store: st, queue: q, tokens: tokens, budget: newBudget(float64(cfg.Capacity)),
		log: cfg.Logger.With("component", "worker", "worker", cfg.ID), draining: make(chan struct{}),
		held: map[string]*held{}}
	if cfg.StageCAFile != "" {
		pem, err := os.ReadFile(cfg.StageCAFile)
		if err != nil {
			return nil, fmt.Errorf("worker: stage CA file: %w", err)
		}
		if w.stageCAs = trustedRoots(); !w.stageCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("worker: stage CA file %s holds no PEM certificate", cfg.StageCAFile)
		}
	}
	w.spool = &spool{limit: cfg.SpoolLimit, log: w.log}
	w.metrics = newMetrics(q, w.spool)
	return w, nil
}

// Run claims jobs while it has capacity, until ctx ends or Drain is
// called. When ctx ends, running compositions are handed off: each
// finishes its current segment, uploads what it recorded, and goes back to
// the queue, where another worker resumes it within seconds. After Drain,
// they run to their end. Run returns when none is left. It also uploads
// what an earlier process left in the spool.
func (w *Worker) Run(ctx context.Context) error {
	owner, err := w.queue.AnswerOwnership(w.cfg.ID, w.runs)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer func() { _ = owner.Unsubscribe() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { w.recoverSpool(ctx) })
	claimCtx, stopClaiming := context.WithCancel(ctx)
	defer stopClaiming()
	wg.Go(func() {
		select {
		case <-w.draining:
			w.log.Info("draining: claiming no more compositions; running ones go on")
			stopClaiming()
		case <-claimCtx.Done():
		}
	})
	for {
		// Claim only with room for at least the smallest composition; a
		// claimed one that does not fit goes back to the queue (runJob).
		if !w.budget.waitRoom(claimCtx, minCost) {
			return nil
		}
		claim, err := w.queue.Claim(claimCtx)
		if err != nil {
			if claimCtx.Err() != nil {
				return nil
			}
			w.log.Warn("claim", "error", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.runJob(ctx, claim)
		}()
	}
}

// Drain makes Run claim nothing more and return once the running
// compositions have ended. Cancelling Run's context meanwhile hands the
// remaining ones off. It is safe to call more than once.
func (w *Worker) Drain() { w.drainOnce.Do(func() { close(w.draining) }) }

// Capacity is counted in 1080p30 composites: a composition costs its
// encoder's pixels per second relative to 1920x1080 at 30 fps (at least a
// quarter), about one core of this machine's class each.
const minCost = 0.25

func cost(v encoder.VideoConfig) float64 {
	v = v.WithDefaults()
	return max(minCost, float64(v.Width*v.Height*v.Framerate)/(1920*1080*30))
}

// budget is the capacity in use.
type budget struct {
	mu    sync.Mutex
	total float64
	used  float64
	freed chan struct{} // closed and replaced when capacity is given back
}

func newBudget(total float64) *budget { return &budget{total: total, freed: make(chan struct{})} }

// take reserves c if it fits, or if nothing runs (a composition larger than
// the whole capacity still runs, alone).
func (b *budget) take(c float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used > 0 && b.used+c > b.total+1e-9 {
		return false
	}
	b.used += c
	return true
}

func (b *budget) give(c float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= c
	close(b.freed)
	b.freed = make(chan struct{})
}

// waitRoom waits until at least c is free; false when ctx ends.
func (b *budget) waitRoom(ctx context.Context, c float64) bool {
	for {
		b.mu.Lock()
		room, freed := b.used == 0 || b.used+c <= b.total+1e-9, b.freed
		b.mu.Unlock()
		if room {
			return true
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return false
		}
	}
}

// trustedRoots is the system's roots, or none where they cannot be read.
func trustedRoots() *x509.CertPool {
	if pool, err := x509.SystemCertPool(); err == nil {
		return pool
	}
	return x509.NewCertPool()
}

// stageOptions are the stage client's options of this worker's
// subscriptions; ua names them in the stage's participant records.
func (w *Worker) stageOptions(ua string) client.Options {
	o := client.Options{ICEIPs: w.cfg.ICEIPs, UserAgent: ua}
	if w.stageCAs != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: w.stageCAs, MinVersion: tls.VersionTLS12}
		o.HTTPClient = &http.Client{Transport: tr} // no Timeout: the events socket stays open
	}
	return o
}

// compositionID is the id in a composition ARN.
func compositionID(arn string) (string, error) {
	a, err := ivs.ParseARN(arn)
	if err != nil || a.Type != ivs.TypeComposition {
		return "", fmt.Errorf("job names %q, not a composition", arn)
	}
	return a.ID, nil
}

// ID is the worker's id, as compositions it runs record it.
func (w *Worker) ID() string { return w.cfg.ID }

// Capacity is how many 1080p30 composites the worker runs at once.
func (w *Worker) Capacity() int { return w.cfg.Capacity }
