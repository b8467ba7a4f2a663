// Package upload copies a recording's finished files from its local spool
// directory to an S3 bucket, in the order they were finished, retrying with
// backoff until the object store takes them: an outage of the store delays
// a recording, it does not lose it. Files are deleted from the spool once
// stored, except those the recorder rewrites (playlists, latest thumbnail).
//
// Order matters for players reading the bucket while it is written: a
// segment is stored before the playlist that names it, because the recorder
// finishes the segment first and the uploader keeps that order.
package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ClientConfig reaches an S3 or S3-compatible store.
type ClientConfig struct {
	Endpoint  string // e.g. http://127.0.0.1:7070; empty for AWS S3
	Region    string // default us-east-1
	AccessKey string
	SecretKey string
	PathStyle bool // bucket in the path, as most S3-compatible servers want
}

// NewClient builds an S3 client from cfg.
func NewClient(cfg ClientConfig) *s3.Client {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	o := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.PathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
	}
	if cfg.Endpoint != "" {
		o.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	return s3.New(o)
}

// Config describes one recording's uploads.
type Config struct {
	Client *s3.Client
	Bucket string
	Prefix string // object key prefix, e.g. <stage>/<composition>/<destination>/composite
	Dir    string // the local spool: the recording's files, relative paths = keys under Prefix
	// Backoff is the first delay after a failed upload, doubled up to MaxBackoff; defaults 500 ms and 30 s.
	Backoff, MaxBackoff time.Duration
	// OnUploaded, when set, is told of every file stored, from the
	// uploader's goroutine.
	OnUploaded func(Uploaded)
	// Logger receives retries and spool trouble, with component=upload
	// added; default slog.Default(). Pass one carrying the composition's id.
	Logger *slog.Logger
}

// Uploaded is a file the object store took.
type Uploaded struct {
	Rel  string // path relative to Dir, with slashes
	Size int64
	// Playlist is the content stored, for a playlist (.m3u8): the
	// recorder rewrites playlists, so the file may already say more.
	Playlist []byte
	// Delay is how long the file waited from Enqueue until it was stored,
	// queueing and retries included: how far the bucket is behind.
	Delay time.Duration
}

// Stats counts what the uploader did.
type Stats struct {
	Uploaded  uint64 // objects stored
	Bytes     uint64
	Failures  uint64 // failed attempts, each retried
	Pending   int    // files waiting, including one being uploaded
	LastError string
}

// Uploader uploads files as they are finished. Enqueue never blocks.
type Uploader struct {
	cfg     Config
	mu      sync.Mutex
	wake    chan struct{} // signalled when work arrives or Close begins
	pending []queued      // in finishing order
	closing bool
	stats   Stats
	done    chan struct{}
	cancel  context.CancelFunc
	log     *slog.Logger
}

// Start starts the upload goroutine; it runs until Close.
func Start(ctx context.Context, cfg Config) (*Uploader, error) {
	if cfg.Client == nil || cfg.Bucket == "" || cfg.Dir == "" {
		return nil, errors.New("upload: a client, a bucket and a spool directory are required")
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	u := &Uploader{cfg: cfg, wake: make(chan struct{}, 1), done: make(chan struct{}),
		log: cfg.Logger.With("component", "upload")}
	ctx, u.cancel = context.WithCancel(ctx)
	go u.run(ctx)
	return u, nil
}

// Enqueue schedules the spool file rel (a path relative to Dir, with
// slashes) for upload. A playlist already waiting is not queued twice: its
// newest content is read when it is uploaded.
func (u *Uploader) Enqueue(rel string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if rewritten(rel) {
		// Skip index 0, which may be in flight with older content.
		for _, p := range u.pending[min(1, len(u.pending)):] {
			if p.rel == rel {
				return
			}
		}
	}
	u.pending = append(u.pending, queued{rel, time.Now()})
	u.signal()
}

// queued is a file waiting for upload.
type queued struct {
	rel string // relative to Dir, with slashes
	at  time.Time
}

func (u *Uploader) signal() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *Uploader) run(ctx context.Context) {
	defer close(u.done)
	for {
		u.mu.Lock()
		var next queued
		closing := u.closing
		if len(u.pending) > 0 {
			next = u.pending[0]
		}
		u.mu.Unlock()
		if next.rel == "" {
			if closing {
				return
			}
			select {
			case <-u.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if !u.uploadWithRetry(ctx, next) {
			return // ctx ended: what is pending stays in the spool
		}
		u.mu.Lock()
		u.pending = u.pending[1:]
		u.mu.Unlock()
	}
}

// uploadWithRetry stores one file, retrying until it succeeds or ctx ends.
func (u *Uploader) uploadWithRetry(ctx context.Context, q queued) bool {
	rel := q.rel
	delay := u.cfg.Backoff
	failing := false
	for {
		up, err := u.upload(ctx, rel)
		if err == nil {
			up.Delay = time.Since(q.at)
			u.mu.Lock()
			u.stats.Uploaded++
			u.stats.Bytes += uint64(up.Size)
			u.mu.Unlock()
			if u.cfg.OnUploaded != nil {
				u.cfg.OnUploaded(up)
			}
			if failing {
				u.log.Info("object store reachable again; uploads resumed", "bucket", u.cfg.Bucket, "key", u.key(rel))
			}
			return true
		}
		if errors.Is(err, os.ErrNotExist) {
			u.log.Error("spooled file vanished before upload", "file", rel, "error", err)
			return true
		}
		u.mu.Lock()
		u.stats.Failures++
		u.stats.LastError = err.Error()
		u.mu.Unlock()
		if !failing {
			u.log.Warn("upload failed; keeping the file in the spool and retrying",
				"bucket", u.cfg.Bucket, "key", u.key(rel), "error", err)
			failing = true
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(2*delay, u.cfg.MaxBackoff)
	}
}

func (u *Uploader) key(rel string) string {
	return path.Join(u.cfg.Prefix, rel)
}

// upload stores one file and removes it from the spool if it is a segment.
// Playlists are read whole first, so that what was stored is known.
func (u *Uploader) upload(ctx context.Context, rel string) (Uploaded, error) {
	local := filepath.Join(u.cfg.Dir, filepath.FromSlash(rel))
	up := Uploaded{Rel: rel}
	var body io.ReadSeeker
	if strings.HasSuffix(rel, ".m3u8") {
		b, err := os.ReadFile(local)
		if err != nil {
			return up, err
		}
		up.Playlist, up.Size, body = b, int64(len(b)), bytes.NewReader(b)
	} else {
		f, err := os.Open(local)
		if err != nil {
			return up, err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return up, err
		}
		up.Size, body = info.Size(), f
	}
	_, err := u.cfg.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(u.cfg.Bucket),
		Key:           aws.String(u.key(rel)),
		Body:          body,
		ContentLength: aws.Int64(up.Size),
		ContentType:   aws.String(contentType(rel)),
	})
	if err != nil {
		return up, fmt.Errorf("put s3://%s/%s: %w", u.cfg.Bucket, u.key(rel), err)
	}
	if !rewritten(rel) {
		if err := os.Remove(local); err != nil {
			u.log.Warn("cannot remove an uploaded file from the spool", "file", local, "error", err)
		}
	}
	return up, nil
}

// rewritten reports whether the recorder rewrites the file (playlists, the
// latest thumbnail): it stays in the spool, and is queued once at a time.
// Every other file is written once and leaves the spool when stored.
func rewritten(rel string) bool {
	return strings.HasSuffix(rel, ".m3u8") || path.Base(rel) == "thumb.jpg"
}

// ErrNoObject is Get's error for a key the bucket does not hold.
var ErrNoObject = errors.New("upload: no such object")

// Get reads one object whole.
func Get(ctx context.Context, client *s3.Client, bucket, key string) ([]byte, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if _, ok := errors.AsType[*types.NoSuchKey](err); ok {
			return nil, fmt.Errorf("s3://%s/%s: %w", bucket, key, ErrNoObject)
		}
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	return b, nil
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".m3u8":
		return "application/vnd.apple.mpegurl"
	case ".ts":
		return "video/mp2t"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Stats reports progress.
func (u *Uploader) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.stats
	s.Pending = len(u.pending)
	return s
}

// Close uploads everything queued, or gives up when ctx ends; then the
// files not uploaded stay in the spool and the error says how many.
func (u *Uploader) Close(ctx context.Context) error {
	u.mu.Lock()
	u.closing = true
	u.signal()
	u.mu.Unlock()
	select {
	case <-u.done:
	case <-ctx.Done():
		u.cancel()
		<-u.done
	}
	u.cancel()
	if s := u.Stats(); s.Pending > 0 {
		return fmt.Errorf("upload: %d files not uploaded to s3://%s/%s, kept in %s: %s",
			s.Pending, u.cfg.Bucket, u.cfg.Prefix, u.cfg.Dir, s.LastError)
	}
	return nil
}
