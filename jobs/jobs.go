// Package jobs owns the queue of work for the composition workers and the
// stop signals of compositions, both in NATS JetStream. A Job starts a
// composition, or records one participant on their own
// (KindParticipantRecording). It does not own the state of that work: it
// lives in package store, and workers record there what became of each job.
//
// The API submits a Job when it accepts StartComposition and signals a stop
// when it accepts StopComposition; package recording submits a participant
// recording when a participant starts publishing on a stage that records
// them. ReapExhausted hands over jobs that ran out of attempts, and Stats
// reads the queue's depth for metrics. Workers, run as a fleet, share one
// durable pull consumer: each claims a job only when it has spare capacity,
// heartbeats while the composition runs, and settles the claim at the end
// (Done), hands it to another worker (Return) or gives up on it (GiveUp).
//
// Delivery guarantees:
//
//   - At least once. A job is removed from the stream only when a worker
//     settles it with Done or GiveUp. A worker can receive a job that
//     another worker already ran (after that worker stopped heartbeating),
//     so starting a composition must be idempotent against the store.
//   - Redelivery after AckWait without a heartbeat. A claim whose worker
//     died, lost its connection or stopped calling Heartbeat is delivered
//     again, to any worker, once AckWait has passed since the last
//     heartbeat.
//   - Bounded attempts. A job is delivered at most MaxDeliver times. The
//     claim of the last attempt reports LastAttempt; the worker should then
//     mark the composition FAILED and settle the claim. A job whose last
//     attempt lapsed (the worker died on it, or it crashed MaxDeliver
//     workers) stays in the stream, never delivered again, until
//     ReapExhausted hands it over and deletes it.
//   - Duplicate submits of the same composition within DuplicateWindow are
//     queued once.
//
// Stop signals are durable: SignalStop writes a key in a KV bucket, so a
// stop sent while the job sat in the queue, or while it moved between
// workers, is seen by whichever worker watches that composition next.
//
// Names. The stream, subjects, consumer and bucket names are fixed (see the
// constants): one deployment has one queue. ARNs contain ':' and '/', which
// are not safe in subject tokens and KV keys, so a composition is named in
// subjects and keys by the unpadded base64url encoding of its full ARN
// (characters [A-Za-z0-9_-]); see Token. The whole ARN is used, not only
// the composition id, so compositions of different accounts or regions
// never share a name.
package jobs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Fixed names of the queue's JetStream resources.
const (
	// StreamName is the work-queue stream that holds start jobs.
	StreamName = "STAGEHAND_JOBS"
	// SubjectPrefix starts the subject of every job: SubjectPrefix + "." + Token(arn).
	SubjectPrefix = "stagehand.jobs.start"
	// ConsumerName is the durable pull consumer all workers share.
	ConsumerName = "stagehand-workers"
	// StopBucket is the KV bucket of stop signals, keyed by Token(arn).
	StopBucket = "stagehand_stops"
)

// Defaults of Config.
const (
	DefaultAckWait         = 10 * time.Second
	DefaultMaxDeliver      = 5
	DefaultMaxAckPending   = 10_000
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultStopTTL         = 7 * 24 * time.Hour
)

// Job asks a worker to run one composition or one participant recording.
type Job struct {
	// Name identifies the work: the composition's ARN, or a participant
	// recording's name (see ParticipantRecordingJob). It keys the job's
	// subject, duplicate detection and stop signal. On the wire it keeps
	// the name it had when every job was a composition, so that jobs queued
	// by an earlier version are still read.
	Name        string    `json:"compositionArn"`
	StageARN    string    `json:"stageArn"`
	SubmittedAt time.Time `json:"submittedAt"`
	Kind        Kind      `json:"kind,omitempty"`
	// Participant names the recording of a KindParticipantRecording job.
	Participant *ParticipantRecording `json:"participant,omitempty"`
}

// Kind says what a job runs.
type Kind string

// Kinds of job.
const (
	KindComposition Kind = "" // a composition (StartComposition)
	// KindParticipantRecording records one participant of a stage on its
	// own (the stage's autoParticipantRecordingConfiguration).
	KindParticipantRecording Kind = "participant-recording"
)

// Config sizes the queue. Every process that opens the queue must use the
// same Config: Open updates the stream and consumer to the one it is given.
type Config struct {
	// Replicas of the stream, consumer and stop bucket: 1 (default), or 3
	// on a 3-node cluster.
	Replicas int
	// AckWait is how long a claim survives without a heartbeat before the
	// job is delivered again. Default 10 s.
	AckWait time.Duration
	// MaxDeliver is how many times a job is delivered before it is given
	// up. Default 5.
	MaxDeliver int
	// MaxAckPending caps the jobs claimed and not yet settled across the
	// whole fleet. Default 10 000.
	MaxAckPending int
	// DuplicateWindow is how long a submitted composition ARN is
	// remembered to drop a retried Submit. Default 2 min.
	DuplicateWindow time.Duration
	// StopTTL is how long a stop signal is kept. It must outlast the time
	// a job can wait in the queue. Default 7 days.
	StopTTL time.Duration
	// Bind opens the stream, consumers and bucket that exist and never
	// creates or updates one: a worker may not configure streams.
	Bind bool
	// Logger receives heartbeats that fail, malformed and reaped jobs,
	// with component=jobs added; default slog.Default(). Local to this
	// process: it need not match other processes' Config.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.StopTTL <= 0 {
		c.StopTTL = DefaultStopTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Queue is one process's handle on the job queue and the stop signals. It
// is safe for concurrent use.
type Queue struct {
	cfg    Config
	js     jetstream.JetStream
	nc     *nats.Conn
	stream jetstream.Stream
	cons   jetstream.Consumer
	stops  jetstream.KeyValue
	reaper jetstream.Consumer
	log    *slog.Logger
}

// Token is how a composition ARN appears in subjects and KV keys: its
// unpadded base64url encoding.
func Token(compositionARN string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(compositionARN))
}

func subject(compositionARN string) string {
	return SubjectPrefix + "." + Token(compositionARN)
}

// Open creates or updates the job stream, the workers' consumer, the stop
// bucket and the record of exhausted jobs, and returns the queue. It is
// idempotent and safe to call from many processes at once.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	q := &Queue{cfg: cfg, js: js, nc: js.Conn(), log: cfg.Logger.With("component", "jobs")}
	var err error
	if q.stream, err = openStream(ctx, js, cfg); err != nil {
		return nil, err
	}
	if q.cons, err = openConsumer(ctx, q.stream, cfg); err != nil {
		return nil, err
	}
	if q.stops, err = openStops(ctx, js, cfg); err != nil {
		return nil, err
	}
	if q.reaper, err = openExhausted(ctx, js, cfg); err != nil {
		return nil, err
	}
	return q, nil
}

// The open functions create first and update only when the resource
// exists with another config. Creating a resource that exists with the
// same config changes nothing on the server, so a fleet of processes
// restarting at once does not rewrite configs under each other (an update
// racing a create also trips a data race inside nats-server 2.15).

func openStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	sc := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "stagehand start-composition jobs",
		Subjects:    []string{SubjectPrefix + ".*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
	}
	s, err := ensureStream(ctx, js, sc, cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("jobs: open stream %s: %w", StreamName, err)
	}
	return s, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig,
	bind bool) (jetstream.Stream, error) {
	if bind {
		return js.Stream(ctx, sc.Name)
	}
	s, err := js.CreateStream(ctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.UpdateStream(ctx, sc)
	}
	return s, err
}

func openConsumer(ctx context.Context, s jetstream.Stream, cfg Config) (jetstream.Consumer, error) {
	cc := jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "stagehand workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		FilterSubject: SubjectPrefix + ".*",
		Replicas:      cfg.Replicas,
	}
	c, err := ensureConsumer(ctx, s, cc, cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("jobs: open consumer %s: %w", ConsumerName, err)
	}
	return c, nil
}

func ensureConsumer(ctx context.Context, s jetstream.Stream, cc jetstream.ConsumerConfig,
	bind bool) (jetstream.Consumer, error) {
	if bind {
		return s.Consumer(ctx, cc.Durable)
	}
	c, err := s.CreateConsumer(ctx, cc)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		c, err = s.UpdateConsumer(ctx, cc)
	}
	return c, err
}

func openStops(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.KeyValue, error) {
	kc := jetstream.KeyValueConfig{
		Bucket:      StopBucket,
		Description: "stagehand composition stop signals",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		History:     1,
		TTL:         cfg.StopTTL,
	}
	if cfg.Bind {
		kv, err := js.KeyValue(ctx, StopBucket)
		if err != nil {
			return nil, fmt.Errorf("jobs: bind bucket %s: %w", StopBucket, err)
		}
		return kv, nil
	}
	kv, err := js.CreateKeyValue(ctx, kc)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.UpdateKeyValue(ctx, kc)
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: open bucket %s: %w", StopBucket, err)
	}
	return kv, nil
}

// Submit queues job. A retried Submit of the same Name within
// DuplicateWindow is acknowledged and not queued again. A zero SubmittedAt
// is set to now.
func (q *Queue) Submit(ctx context.Context, job Job) error {
	if job.Name == "" {
		return errors.New("jobs: submit: empty composition ARN")
	}
	if job.SubmittedAt.IsZero() {
		job.SubmittedAt = time.Now().UTC()
	}
	b, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("jobs: submit %s: encode: %w", job.Name, err)
	}
	_, err = q.js.Publish(ctx, subject(job.Name), b,
		jetstream.WithMsgID(job.Name), jetstream.WithExpectStream(StreamName))
	if err != nil {
		return fmt.Errorf("jobs: submit %s: %w", job.Name, err)
	}
	return nil
}

// Stats is a snapshot of the queue's depth, for metrics.
type Stats struct {
	// Waiting is the number of jobs no worker has claimed yet.
	Waiting uint64
	// Unsettled is the number of jobs claimed and not yet settled: running
	// on a worker, returned and waiting for their redelivery, or lapsed
	// and about to be redelivered.
	Unsettled int
	// Stored is the number of jobs in the stream: waiting, unsettled, and
	// exhausted ones that ReapExhausted has not removed yet.
	Stored uint64
}

// Stats reads the queue's depth.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("jobs: stats: consumer info: %w", err)
	}
	si, err := q.stream.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("jobs: stats: stream info: %w", err)
	}
	return Stats{Waiting: ci.NumPending, Unsettled: ci.NumAckPending, Stored: si.State.Msgs}, nil
}
