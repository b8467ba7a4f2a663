package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/token"
)

// publishConfig is `stagehand publish`: a synthetic participant.
type publishConfig struct {
	Token    string
	WHIPURL  string
	Duration time.Duration
	Media    synth.Config
	NoAudio  bool
	NoVideo  bool
	// Simulcast sends the video as three layers: Media's size and a half
	// and a quarter of it (synth.SimulcastLayers).
	Simulcast bool
	ICEIPs    []string
	// ReconnectWithin bounds one outage of the stage; 0 never reconnects.
	ReconnectWithin time.Duration
}

func parsePublishFlags(args []string, stderr io.Writer) (publishConfig, error) {
	var c publishConfig
	fs := flag.NewFlagSet("stagehand publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Token, "token", os.Getenv("STAGEHAND_TOKEN"),
		"participant token with the PUBLISH capability (env STAGEHAND_TOKEN)")
	fs.StringVar(&c.WHIPURL, "whip-url", "", "WHIP endpoint (default: the token's whip_url claim)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (default: until interrupted)")
	fs.StringVar(&c.Media.Color, "color", "", `background colour: a name ("tomato") or #RRGGBB (default steelblue)`)
	fs.StringVar(&c.Media.Label, "label", "", "text drawn on the picture (default: the token's user id)")
	size := fs.String("size", "640x360", "picture size WxH")
	fs.IntVar(&c.Media.FPS, "fps", 30, "frames per second")
	fs.StringVar(&c.Media.VideoCodec, "codec", "VP8", "video codec: VP8 or H264")
	fs.IntVar(&c.Media.VideoBitrate, "bitrate", 1_000_000, "video bitrate, bits/s")
	fs.Float64Var(&c.Media.ToneHz, "tone", 440, "tone frequency, Hz (1..20000)")
	fs.BoolVar(&c.Media.Silent, "silent", false, "send silence instead of the tone")
	fs.BoolVar(&c.Media.SyncMarks, "sync-marks", false,
		"flash white and beep at the start of every second (to check A/V sync)")
	fs.BoolVar(&c.NoAudio, "no-audio", false, "publish video only")
	fs.BoolVar(&c.NoVideo, "no-video", false, "publish audio only")
	fs.BoolVar(&c.Simulcast, "simulcast", false,
		"publish the video as three layers (simulcast, RIDs q/h/f): --size, half and a quarter of it, "+
			"at --bitrate, a third and an eighth of it")
	fs.DurationVar(&c.ReconnectWithin, "reconnect-within", time.Minute,
		"when the stage's node is lost, keep reconnecting this long before giving up (0: never reconnect)")
	fs.Func("ice-ip", "local `IP` to offer in ICE candidates (repeatable; default every interface)", func(v string) error {
		if net.ParseIP(v) == nil {
			return fmt.Errorf("%q is not an IP address", v)
		}
		c.ICEIPs = append(c.ICEIPs, v)
		return nil
	})
	const usage = "Usage: stagehand publish --token TOKEN [flags]\n\n" +
		"Joins a stage over WHIP and publishes a test pattern and a tone until interrupted."
	if err := parseFlags(fs, stderr, usage, args); err != nil {
		return c, err
	}
	if _, err := fmt.Sscanf(*size, "%dx%d", &c.Media.Width, &c.Media.Height); err != nil {
		return c, fmt.Errorf("--size %q: want WxH, e.g. 1280x720", *size)
	}
	return c, c.resolve()
}

// resolve fills the WHIP URL and label from the token and checks the rest.
func (c *publishConfig) resolve() error {
	if c.Token == "" {
		return errors.New("no token: give --token (from aws ivs-realtime create-participant-token) or set STAGEHAND_TOKEN")
	}
	claims, err := token.Peek(c.Token)
	if err != nil {
		return fmt.Errorf("--token: %w", err)
	}
	if c.WHIPURL == "" {
		c.WHIPURL = claims.WhipURL
	}
	if c.WHIPURL == "" {
		return errors.New("the token carries no whip_url claim: give --whip-url")
	}
	if !claims.Publish {
		return fmt.Errorf("participant %s's token has no PUBLISH capability", claims.ParticipantID)
	}
	if c.Media.Label == "" {
		c.Media.Label = claims.UserID
	}
	if c.ReconnectWithin < 0 {
		return errors.New("--reconnect-within must not be negative")
	}
	if c.NoAudio && c.NoVideo {
		return errors.New("--no-audio and --no-video leave nothing to publish")
	}
	if c.Simulcast && c.NoVideo {
		return errors.New("--simulcast layers the video, which --no-video leaves out")
	}
	c.Media.VideoCodec = strings.ToUpper(c.Media.VideoCodec)
	if err := c.Media.WithDefaults().Validate(); err != nil {
		return err
	}
	return nil
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parsePublishFlags(args, stderr)
	if err != nil {
		return err
	}
	layers := []synth.Config{cfg.Media}
	if cfg.Simulcast {
		layers = synth.SimulcastLayers(cfg.Media)
	}
	// The last source is the top layer's, and sends the audio.
	var srcs []*synth.Source
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	for _, l := range layers {
		src, err := synth.New(l)
		if err != nil {
			return err
		}
		srcs = append(srcs, src)
	}
	pub, err := joinStage(ctx, cfg, srcs, stdout, stderr)
	if err != nil {
		return fmt.Errorf("join %s: %w", cfg.WHIPURL, err)
	}
	claims, _ := token.Peek(cfg.Token)
	sizes := make([]string, len(layers))
	for i, l := range layers {
		sizes[i] = fmt.Sprintf("%dx%d", l.Width, l.Height)
	}
	fmt.Fprintf(stdout, "stagehand: publishing as participant %s to %s (%s %s@%d + Opus)\n",
		claims.ParticipantID, cfg.WHIPURL, cfg.Media.VideoCodec, strings.Join(sizes, "+"), cfg.Media.FPS)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if cfg.Duration > 0 {
		runCtx, stop = context.WithTimeout(runCtx, cfg.Duration)
		defer stop()
	}
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-pub.Done(): // the stage ended it, or reconnecting gave up
			stop()
		case <-runCtx.Done():
		}
	})
	runErr := runSources(runCtx, pub, srcs)
	stop()
	watch.Wait()
	ended := pub.Err() // read before Close, which ends the publication itself
	leaveCtx, cancelLeave := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelLeave()
	closeErr := pub.Close(leaveCtx)
	switch {
	case ended != nil:
		return fmt.Errorf("the stage ended the connection (DisconnectParticipant, stage deleted, or the network): %w",
			ended)
	case runErr != nil:
		return runErr
	case closeErr != nil:
		return fmt.Errorf("leave: %w", closeErr)
	}
	fmt.Fprintln(stdout, "stagehand: left the stage")
	return nil
}

// runSources runs the sources until ctx ends: one, or one a simulcast
// layer with the top layer's sending the audio. It returns the first
// error.
func runSources(ctx context.Context, pub *client.Publisher, srcs []*synth.Source) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		var video, audio synth.SampleWriter
		switch {
		case len(pub.Layers) == len(srcs) && len(srcs) > 1:
			video = pub.Layers[i]
		case pub.Video != nil:
			video = pub.Video
		}
		if i == len(srcs)-1 && pub.Audio != nil {
			audio = pub.Audio
		}
		if video == nil && audio == nil {
			continue
		}
		wg.Go(func() {
			if errs[i] = src.Run(ctx, video, audio); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// joinStage publishes the sources' tracks to the stage (one source, or
// one a simulcast layer, low to high); the publication reconnects by
// itself, with a line on stdout each time, and logs its trouble to stderr.
func joinStage(ctx context.Context, cfg publishConfig, srcs []*synth.Source, stdout, stderr io.Writer) (
	*client.Publisher, error) {
	codec := webrtc.MimeTypeVP8
	if cfg.Media.VideoCodec == "H264" {
		codec = webrtc.MimeTypeH264
	}
	joinCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return client.Publish(joinCtx, cfg.WHIPURL, cfg.Token, client.PublishOptions{
		Options:    client.Options{ICEIPs: cfg.ICEIPs, UserAgent: "stagehand-publish/" + version},
		VideoCodec: codec, NoAudio: cfg.NoAudio, NoVideo: cfg.NoVideo, Simulcast: cfg.Simulcast,
		OnKeyframeRequest: func() {
			for _, s := range srcs {
				s.RequestKeyframe()
			}
		},
		OnLayerKeyframeRequest: func(rid string) {
			if i := slices.Index(client.SimulcastRIDs, rid); i >= 0 && i < len(srcs) {
				srcs[i].RequestKeyframe()
			}
		},
		Reconnect: client.Reconnect{Off: cfg.ReconnectWithin == 0, Within: cfg.ReconnectWithin,
			OnReconnect: func(attempts int, took time.Duration) {
				fmt.Fprintf(stdout, "stagehand: reconnected to the stage after %v (%d attempts)\n",
					took.Round(time.Millisecond), attempts)
			}},
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}
