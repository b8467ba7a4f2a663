package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/stagehand-rt/stagehand/loadtest"
)

// loadFlags is `stagehand load`: the flags over loadtest.Config.
type loadFlags struct {
	cfg  loadtest.Config
	json bool
}

func parseLoadFlags(args []string, stderr io.Writer) (loadFlags, error) {
	var f loadFlags
	c := &f.cfg
	fs := flag.NewFlagSet("stagehand load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.EndpointURL, "endpoint-url", os.Getenv("AWS_ENDPOINT_URL"),
		"the IVS Real-Time API, e.g. http://127.0.0.1:8690 (env AWS_ENDPOINT_URL)")
	fs.IntVar(&c.Publishers, "publishers", 1, "synthetic publishers (video and Opus), spread over the stages")
	fs.IntVar(&c.Subscribers, "subscribers", 10,
		"WHEP subscribers, each receiving every publisher of its stage (ramp: the ceiling, 0 for none)")
	fs.DurationVar(&c.Duration, "duration", 0,
		"how long to run once the publishers have joined (default 15s; ramp: until a threshold is crossed)")
	fs.Func("stage-arn", "an existing `ARN` to use instead of new stages (repeatable)", func(v string) error {
		c.StageARNs = append(c.StageARNs, v)
		return nil
	})
	fs.IntVar(&c.Stages, "stages", 0, "new stages to spread the publishers over (default: 12 publishers a stage)")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.StringVar(&c.VideoCodec, "video-codec", "vp8", "vp8 or h264")
	size := fs.String("video-size", "1280x720", "picture size WxH")
	fs.IntVar(&c.FPS, "fps", 30, "video frames per second")
	fs.Func("video-bitrate", "video bitrate, bits/s with an optional k or M (default 1500k)", func(v string) error {
		var err error
		c.VideoBitrate, err = parseBitrate(v)
		return err
	})
	fs.StringVar(&c.MetricsURL, "metrics-url", "",
		`the server's Prometheus metrics (default: the endpoint URL + /metrics; "none" to skip)`)
	fs.IntVar(&c.Ramp.Step, "ramp-step", 0, "ramp mode: add this many subscribers a step")
	fs.DurationVar(&c.Ramp.Every, "ramp-every", 0, "ramp mode: how long each step runs (default 10s)")
	fs.Func("max-loss", "ramp mode: the packet loss a step may have, e.g. 1% (default 1%)", func(v string) error {
		var err error
		c.Ramp.MaxLoss, err = parsePercent(v)
		return err
	})
	fs.DurationVar(&c.Ramp.MaxLatency, "max-latency", 0,
		"ramp mode: the p95 end-to-end latency a step may have (default 200ms)")
	fs.IntVar(&c.JoinConcurrency, "join-concurrency", 16, "joins in flight at once")
	fs.Func("ice-ip", "local `IP` to offer in ICE candidates (repeatable; default every interface)", func(v string) error {
		if net.ParseIP(v) == nil {
			return fmt.Errorf("%q is not an IP address", v)
		}
		c.ICEIPs = append(c.ICEIPs, v)
		return nil
	})
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	const usage = "Usage: stagehand load --endpoint-url URL [flags]\n\n" +
		"Sizes a stage node: runs synthetic publishers and WHEP subscribers on stages for a while and reports\n" +
		"join times, received bitrate, loss, end-to-end latency, freezes, failures and the server's CPU and\n" +
		"memory. Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (default us-east-1)."
	if err := parseFlags(fs, stderr, usage, args); err != nil {
		return f, err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if c.Ramp.Step > 0 && !set["subscribers"] {
		c.Subscribers = 0 // a ramp has no ceiling unless given one
	}
	if _, err := fmt.Sscanf(*size, "%dx%d", &c.Width, &c.Height); err != nil {
		return f, fmt.Errorf("--video-size %q: want WxH, e.g. 1280x720", *size)
	}
	c.AccessKeyID, c.SecretAccessKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	c.Region = envOr("AWS_REGION", "us-east-1")
	if !*quiet {
		c.Progress = stderr
	}
	if c.EndpointURL == "" {
		return f, errors.New("no endpoint: give --endpoint-url (stagehand serve's API, e.g. http://127.0.0.1:8690)")
	}
	return f, c.WithDefaults().Validate()
}

// parseBitrate reads 1500000, 1500k or 1.5M.
func parseBitrate(v string) (int, error) {
	mul := 1.0
	switch {
	case strings.HasSuffix(v, "k"), strings.HasSuffix(v, "K"):
		mul, v = 1e3, v[:len(v)-1]
	case strings.HasSuffix(v, "M"):
		mul, v = 1e6, v[:len(v)-1]
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want bits/s, e.g. 1500k", v)
	}
	return int(n * mul), nil
}

// parsePercent reads 1% or 0.01 as a fraction.
func parsePercent(v string) (float64, error) {
	s, div := v, 1.0
	if p, ok := strings.CutSuffix(v, "%"); ok {
		s, div = p, 100
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n/div > 1 {
		return 0, fmt.Errorf("%q: want a share, e.g. 1%% or 0.01", v)
	}
	return n / div, nil
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseLoadFlags(args, stderr)
	if err != nil {
		return err
	}
	rep, err := loadtest.Run(ctx, f.cfg)
	if err != nil {
		return err
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteTable(stdout)
}
