package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/stagehand-rt/stagehand/compose"
	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

func runCompose(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stagehand compose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var inputs, attrs listFlag
	fs.Var(&inputs, "input", "media `file` for one participant, in arrival order (repeatable)")
	fs.Var(&attrs, "attr", "participant attribute `N:key=value` (1-based input number; repeatable)")
	layoutPath := fs.String("layout", "", "layout JSON (IVS LayoutConfiguration); empty for the default grid")
	encoderPath := fs.String("encoder", "",
		"encoder configuration JSON ({\"video\":{\"width\":…,\"height\":…,\"framerate\":…,\"bitrate\":…}}); empty for IVS "+
			"defaults (1280x720, 30 fps, 2.5 Mbps)")
	preset := fs.String("preset", encoder.DefaultPreset, "libx264 preset")
	rtmpURL := fs.String("rtmps", "", "RTMP(S) channel ingest URL with stream key (rtmps://host/app/key or rtmp://…)")
	caFile := fs.String("ca-file", "", "CA bundle to verify the RTMPS server with")
	hlsDir := fs.String("hls-dir", "", "write the HLS recording into this directory")
	s3URL := fs.String("s3", "", "upload the HLS recording to s3://bucket/prefix")
	s3Endpoint := fs.String("s3-endpoint", os.Getenv("AWS_ENDPOINT_URL_S3"),
		"S3-compatible endpoint URL (path-style); empty for AWS")
	region := fs.String("s3-region", envOr("AWS_REGION", "us-east-1"), "S3 region")
	stageARN := fs.String("stage-arn", "", "stage ARN written into the recording's events/*.json")
	segment := fs.Int("segment", 6, "HLS target segment duration in seconds (2..10)")
	duration := fs.Duration("duration", 0, "stop after this much output; 0 stops when the shortest input ends")
	quiet := fs.Bool("quiet", false, "no progress lines")
	realtime := fs.Bool("realtime", false,
		"send at the pace of the output clock, as a live composition does (for real channels); default as fast as possible")
	cpuProfile := fs.String("cpuprofile", "", "write a pprof CPU profile of the composition to this `file`")
	memProfile := fs.String("memprofile", "", "write a pprof allocation profile to this `file` at the end")
	const usage = "Usage: stagehand compose --input a.webm --input b.mp4 [flags]\n\n" +
		"Composes media files as stage participants and sends the composite to RTMP(S), S3 and/or a " +
		"local HLS directory."
	if err := parseFlags(fs, stderr, usage, args); err != nil {
		return err
	}
	cfg := compose.Config{Realtime: *realtime, StageARN: *stageARN, SegmentSeconds: *segment, Duration: *duration,
		RTMPURL: *rtmpURL, RTMPCA: *caFile, HLSDir: *hlsDir}
	var err error
	if cfg.Layout, err = readLayoutConfig(*layoutPath); err != nil {
		return err
	}
	if cfg.Video, err = readEncoderConfig(*encoderPath); err != nil {
		return err
	}
	cfg.Video.Preset = *preset
	ps, err := previewParticipants(len(inputs), attrs, nil, nil)
	if err != nil {
		return err
	}
	for i, path := range inputs {
		cfg.Inputs = append(cfg.Inputs, compose.Input{Path: path, Attributes: ps[i].Attributes})
	}
	if *s3URL != "" {
		u, err := url.Parse(*s3URL)
		if err != nil || u.Scheme != "s3" || u.Host == "" {
			return fmt.Errorf("--s3 %q: want s3://bucket/prefix", *s3URL)
		}
		cfg.S3 = &compose.S3{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Client: upload.ClientConfig{
			Endpoint: *s3Endpoint, Region: *region, PathStyle: *s3Endpoint != "",
			AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"), SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		}}
	}
	if !*quiet {
		cfg.Progress = func(p compose.Progress) { fmt.Fprintln(stderr, progressLine(p)) }
	}
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	res, err := compose.Run(ctx, cfg)
	err = errors.Join(err, stopProfiles())
	fmt.Fprintf(stdout, "%s in %s\n", progressLine(res.Progress), res.Wall.Round(time.Millisecond))
	if res.AudioDropped > 0 {
		fmt.Fprintf(stdout, "audio: %d samples dropped by the mixer\n", res.AudioDropped)
	}
	return err
}

func progressLine(p compose.Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frames=%d fps=%.0f time=%.1fs speed=%.2fx", p.Frames, p.FPS, p.MediaSeconds, p.Speed)
	for _, d := range p.Destinations {
		fmt.Fprintf(&b, " %s=%s(%d pkts", d.Name, d.State, d.Packets)
		if d.Dropped > 0 {
			fmt.Fprintf(&b, ", %d dropped", d.Dropped)
		}
		if d.LastError != "" {
			fmt.Fprintf(&b, ", %s", d.LastError)
		}
		b.WriteString(")")
	}
	return b.String()
}

// readEncoderConfig reads an IVS encoder configuration: the body of
// CreateEncoderConfiguration ({"video":{…}}), or GetEncoderConfiguration's
// answer ({"encoderConfiguration":{"video":{…}}}).
func readEncoderConfig(path string) (encoder.VideoConfig, error) {
	var cfg encoder.VideoConfig
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read encoder configuration: %w", err)
	}
	var doc struct {
		Video   *ivsVideo `json:"video"`
		Wrapped *struct {
			Video *ivsVideo `json:"video"`
		} `json:"encoderConfiguration"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return cfg, fmt.Errorf("encoder configuration %s: %w", path, err)
	}
	v := doc.Video
	if v == nil && doc.Wrapped != nil {
		v = doc.Wrapped.Video
	}
	if v == nil {
		return cfg, fmt.Errorf("encoder configuration %s: no \"video\" member", path)
	}
	cfg = encoder.VideoConfig{Width: v.Width, Height: v.Height, Framerate: int(v.Framerate), Bitrate: v.Bitrate}
	if v.Framerate != float64(int(v.Framerate)) {
		return cfg, errors.New("encoder configuration: fractional framerates are not supported")
	}
	return cfg, cfg.Validate()
}

// ivsVideo is IVS's Video shape; the API allows a few more members that do not apply here.
type ivsVideo struct {
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Framerate float64 `json:"framerate"`
	Bitrate   int     `json:"bitrate"`
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
