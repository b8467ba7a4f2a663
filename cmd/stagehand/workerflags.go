package main

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/worker"
)

// workerFlags are the composition worker's settings, the same in
// `stagehand serve` and `stagehand worker`.
type workerFlags struct {
	S3          upload.ClientConfig // no Endpoint and no keys: the local buckets
	Idle        time.Duration       // 0: never
	Capacity    int                 // 0: by CPU count
	CAFile      string              // verifies RTMPS channels
	StageCAFile string              // verifies an HTTPS stage
	Spool       byteSize            // bound of the upload spool
	RTMPRetry   time.Duration       // reconnecting before a channel is FAILED
}

func (w *workerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.S3.Endpoint, "s3-endpoint", os.Getenv("STAGEHAND_S3_ENDPOINT"),
		"S3-compatible server recordings upload to, e.g. http://127.0.0.1:7070 (env STAGEHAND_S3_ENDPOINT; default: local "+
			"buckets under --data-dir)")
	fs.StringVar(&w.S3.Region, "s3-region", envOr("STAGEHAND_S3_REGION", "us-east-1"), "region of the S3 server")
	fs.StringVar(&w.S3.AccessKey, "s3-access-key-id", os.Getenv("STAGEHAND_S3_ACCESS_KEY_ID"),
		"S3 access key id (env STAGEHAND_S3_ACCESS_KEY_ID)")
	fs.StringVar(&w.S3.SecretKey, "s3-secret-access-key", os.Getenv("STAGEHAND_S3_SECRET_ACCESS_KEY"),
		"S3 secret (env STAGEHAND_S3_SECRET_ACCESS_KEY)")
	fs.DurationVar(&w.Idle, "idle-timeout", worker.DefaultIdleTimeout,
		"stop a composition whose stage has had no publisher this long (0: never)")
	fs.StringVar(&w.CAFile, "rtmps-ca-file", "", "CA bundle that verifies RTMPS channel servers (default: the system's)")
	fs.StringVar(&w.StageCAFile, "stage-ca-file", os.Getenv("STAGEHAND_STAGE_CA_FILE"),
		"CA bundle (or certificate) that verifies an HTTPS stage (default: the system's; serve's embedded worker "+
			"trusts serve's self-signed certificate)")
	fs.IntVar(&w.Capacity, "capacity", 0,
		"capacity in 1080p30 composites (a 720p30 one counts 0.44; default: one per two CPUs)")
	w.Spool = worker.DefaultSpoolLimit
	fs.Var(&w.Spool, "spool-limit",
		"bound of the segments waiting for the object store (e.g. 500MiB, 8GiB); past it a recording fails")
	fs.DurationVar(&w.RTMPRetry, "rtmp-retry-for", worker.DefaultRTMPRetryFor,
		"how long a channel destination reconnects before it is FAILED (recordings go on)")
}

// byteSize is a flag value in bytes, with an optional KiB/MiB/GiB suffix.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(v string) error {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return errors.New("want a positive size such as 500MiB or 8GiB")
	}
	*b = byteSize(n * mult)
	return nil
}

func (w *workerFlags) validate() []error {
	var errs []error
	if w.S3.Endpoint != "" && (w.S3.AccessKey == "" || w.S3.SecretKey == "") {
		errs = append(errs,
			errors.New("--s3-endpoint needs --s3-access-key-id and --s3-secret-access-key (or STAGEHAND_S3_ACCESS_KEY_ID and "+
				"STAGEHAND_S3_SECRET_ACCESS_KEY)"))
	}
	if w.Capacity < 0 {
		errs = append(errs, errors.New("--capacity must be positive (0: by CPU count)"))
	}
	w.S3.PathStyle = w.S3.Endpoint != "" // what S3-compatible servers want
	return errs
}

// config is the worker's configuration: S3 destinations upload to the S3
// server (AWS S3 when only keys are given), spooled under <dataDir>/spool;
// without one they record into <dataDir>/buckets.
func (w *workerFlags) config(dataDir string, channels map[string]string, iceIPs []string,
	log *slog.Logger) worker.Config {
	c := worker.Config{Capacity: w.Capacity, BucketsDir: filepath.Join(dataDir, "buckets"),
		Channels: channels, ICEIPs: iceIPs, IdleTimeout: w.Idle, RTMPSCAFile: w.CAFile, StageCAFile: w.StageCAFile,
		Logger:     log,
		SpoolLimit: int64(w.Spool), RTMPRetryFor: w.RTMPRetry}
	if w.Idle == 0 {
		c.IdleTimeout = -1
	}
	if w.S3.Endpoint != "" || w.S3.AccessKey != "" {
		s3 := w.S3
		c.S3, c.SpoolDir = &s3, filepath.Join(dataDir, "spool")
	}
	return c
}

// channelsFlag registers --channel: the RTMP(S) URL of each IVS channel a
// composition may send to.
func channelsFlag(fs *flag.FlagSet, channels map[string]string) {
	fs.Func("channel", "IVS channel a composition may send to: `ARN=rtmps://host/app/streamkey` (repeatable)",
		func(v string) error {
			arn, u, ok := strings.Cut(v, "=")
			if !ok {
				return errors.New("want ARN=URL")
			}
			channels[arn] = u
			return nil
		})
}
