// Package loadtest sizes a stage node: it starts synthetic publishers and
// WHEP subscribers on stages made (or named) through the IVS Real-Time API,
// for a bounded time or in ramp steps, and reports join times, received
// bitrate, packet loss, end-to-end latency, freezes, failures and the
// server's CPU and memory. It owns its participants and the stages it
// creates; the server it measures is someone else's.
//
// The tool must measure the server, not itself: media is encoded once, as
// a short loop, and every publisher replays the same encoded frames,
// packetized to RTP ahead of time. Latency is measured in-process on one
// clock: each publisher has its own random RTP timestamp base and records
// when it sent each video frame; a subscriber looks the frame's timestamp
// up when the frame's first packet arrives. The stage forwards RTP with
// the publisher's timestamps, so this holds only while the tool runs both
// ends, as it does.
package loadtest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// MaxPublishersPerStage is IVS's limit of publishers on one stage, and
// MaxSubscribersPerStage the stage server's default quota of subscribers
// (serve --stage-max-subscribers): more subscribers take more stages.
const (
	MaxPublishersPerStage  = 12
	MaxSubscribersPerStage = 10000
)

// Config is one load run. Defaults fill what is left zero.
type Config struct {
	// EndpointURL is the IVS Real-Time API (stagehand serve's --api-addr).
	EndpointURL string
	// AccessKeyID, SecretAccessKey and Region sign the API requests.
	AccessKeyID, SecretAccessKey, Region string
	// StageARNs are existing stages to use; without them Stages new stages
	// are created (default: enough for 12 publishers each) and deleted at
	// the end.
	StageARNs []string
	Stages    int
	// Publishers are spread over the stages, Subscribers too; each
	// subscriber receives every publisher of its stage.
	Publishers, Subscribers int
	// Duration of the run, after the publishers have joined (default 15 s;
	// in ramp mode, 0 means until a threshold is crossed).
	Duration time.Duration
	// VideoCodec is "vp8" (default) or "h264".
	VideoCodec         string
	Width, Height, FPS int    // default 1280x720 at 30
	VideoBitrate       int    // bits/s, default 1,500,000
	MetricsURL         string // default EndpointURL + /metrics; "none" to skip
	ICEIPs             []string
	JoinConcurrency    int // joins in flight at once, default 16
	Ramp               Ramp
	Progress           io.Writer // a one-line progress, rewritten each second; nil for none
	Logger             *slog.Logger
}

// Ramp adds Step subscribers every Every until the p95 latency or the loss
// over the last step crosses its threshold or a join fails (or Subscribers,
// when not 0, are reached, or the stages are full). Step 0 is no ramp.
type Ramp struct {
	Step       int
	Every      time.Duration // default 10 s
	MaxLoss    float64       // fraction, default 0.01
	MaxLatency time.Duration // p95, default 200 ms
}

// WithDefaults returns c with its zero settings filled.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.VideoCodec == "" {
		c.VideoCodec = "vp8"
	}
	c.VideoCodec = strings.ToLower(c.VideoCodec)
	def(&c.Width, 1280)
	def(&c.Height, 720)
	def(&c.FPS, 30)
	def(&c.VideoBitrate, 1_500_000)
	def(&c.JoinConcurrency, 16)
	if c.Stages == 0 && len(c.StageARNs) == 0 {
		c.Stages = max(1, (c.Publishers+MaxPublishersPerStage-1)/MaxPublishersPerStage)
	}
	if c.Duration == 0 && c.Ramp.Step == 0 {
		c.Duration = 15 * time.Second
	}
	if c.Ramp.Every == 0 {
		c.Ramp.Every = 10 * time.Second
	}
	if c.Ramp.MaxLoss == 0 {
		c.Ramp.MaxLoss = 0.01
	}
	if c.Ramp.MaxLatency == 0 {
		c.Ramp.MaxLatency = 200 * time.Millisecond
	}
	if c.MetricsURL == "" {
		c.MetricsURL = strings.TrimSuffix(c.EndpointURL, "/") + "/metrics"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Logger = c.Logger.With("component", "loadtest")
	return c
}

// stageCount is how many stages the run uses.
func (c Config) stageCount() int {
	if len(c.StageARNs) > 0 {
		return len(c.StageARNs)
	}
	return c.Stages
}

// capacity is how many subscribers the stages take.
func (c Config) capacity() int {
	return c.stageCount() * MaxSubscribersPerStage
}

// Validate checks a Config with its defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if u, err := url.Parse(c.EndpointURL); err != nil || u.Scheme == "" || u.Host == "" {
		bad("endpoint URL %q: want http(s)://host:port", c.EndpointURL)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		bad("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if c.Publishers < 1 {
		bad("publishers %d: want at least 1", c.Publishers)
	}
	if c.Subscribers < 0 || c.Stages < 0 || c.Duration < 0 {
		bad("subscribers, stages and duration may not be negative")
	}
	if len(c.StageARNs) > 0 && c.Stages > 0 && c.Stages != len(c.StageARNs) {
		bad("stages %d and %d stage ARNs: give one or the other", c.Stages, len(c.StageARNs))
	}
	if n := c.stageCount(); n > 0 && c.Publishers > n*MaxPublishersPerStage {
		bad("%d publishers on %d stages: at most %d per stage", c.Publishers, n, MaxPublishersPerStage)
	}
	if n := c.stageCount(); n > 0 && c.Ramp.Step == 0 && c.Subscribers > c.capacity() {
		bad("%d subscribers on %d stages: at most %d subscribers per stage "+
			"(give --stages and as many publishers, one each)", c.Subscribers, n, MaxSubscribersPerStage)
	}
	if c.VideoCodec != "vp8" && c.VideoCodec != "h264" {
		bad("video codec %q: want vp8 or h264", c.VideoCodec)
	}
	if c.Ramp.Step < 0 || c.Ramp.Every < 0 || c.Ramp.MaxLoss < 0 || c.Ramp.MaxLatency < 0 {
		bad("ramp settings may not be negative")
	}
	if c.JoinConcurrency < 1 {
		bad("join concurrency %d: want at least 1", c.JoinConcurrency)
	}
	return errors.Join(errs...)
}
