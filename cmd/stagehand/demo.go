package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
)

// demo is `serve --demo`: a stage with two synthetic participants and a
// composition recording them into the local bucket, made through the
// server's own API as a user would.
type demo struct {
	api      *rt.Client
	log      *slog.Logger
	comp     *string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	iceIPs   []string
	dataDir  string
	stdout   io.Writer
	hc       *http.Client // trusts serve's own HTTPS certificate; nil over HTTP
	stopOnce sync.Once
}

// startDemo sets the demo up against the API at apiURL.
func startDemo(ctx context.Context, cfg serveConfig, apiURL string, stdout io.Writer, log *slog.Logger) (*demo, error) {
	hc, err := cfg.selfClient()
	if err != nil {
		return nil, err
	}
	d := &demo{log: log.With("component", "demo"), iceIPs: cfg.ICEIPs, dataDir: cfg.DataDir, stdout: stdout, hc: hc}
	opts := rt.Options{Region: cfg.Region, BaseEndpoint: aws.String(apiURL), RetryMaxAttempts: 2,
		Credentials: credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")}
	if hc != nil {
		opts.HTTPClient = hc
	}
	d.api = rt.New(opts)
	st, err := d.api.CreateStage(ctx, &rt.CreateStageInput{Name: aws.String("demo")})
	if err != nil {
		return nil, fmt.Errorf("demo stage: %w", err)
	}
	enc, err := d.api.CreateEncoderConfiguration(ctx, &rt.CreateEncoderConfigurationInput{Name: aws.String("demo-720p30")})
	if err != nil {
		return nil, fmt.Errorf("demo encoder configuration: %w", err)
	}
	sc, err := d.api.CreateStorageConfiguration(ctx, &rt.CreateStorageConfigurationInput{Name: aws.String("demo"),
		S3: &types.S3StorageConfiguration{BucketName: aws.String("demo-recordings")}})
	if err != nil {
		return nil, fmt.Errorf("demo storage configuration: %w", err)
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	for _, p := range []struct{ user, color string }{{"alice", "tomato"}, {"bob", "teal"}} {
		if err := d.publish(pctx, st.Stage, p.user, p.color); err != nil {
			d.stop()
			return nil, err
		}
	}
	comp, err := d.api.StartComposition(ctx, &rt.StartCompositionInput{StageArn: st.Stage.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn:  sc.StorageConfiguration.Arn,
			EncoderConfigurationArns: []string{*enc.EncoderConfiguration.Arn},
			RecordingConfiguration: &types.RecordingConfiguration{
				HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}},
		}}}})
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("demo composition: %w", err)
	}
	d.comp = comp.Composition.Arn
	prefix := *comp.Composition.Destinations[0].Detail.S3.RecordingPrefix
	fmt.Fprintf(stdout, "stagehand: demo: stage %s with alice and bob publishing; composition %s\n", *st.Stage.Arn,
		*d.comp)
	fmt.Fprintf(stdout, "stagehand: demo: recording to %s (Ctrl-C stops it cleanly)\n",
		filepath.Join(cfg.DataDir, "buckets", "demo-recordings", filepath.FromSlash(prefix),
			filepath.FromSlash(ivsrec.PlaylistPath("720p30"))))
	return d, nil
}

// publish runs one synthetic participant until the demo stops.
func (d *demo) publish(ctx context.Context, st *types.Stage, user, color string) error {
	tok, err := d.api.CreateParticipantToken(ctx, &rt.CreateParticipantTokenInput{StageArn: st.Arn,
		UserId: aws.String(user)})
	if err != nil {
		return fmt.Errorf("demo token: %w", err)
	}
	src, err := synth.New(synth.Config{Color: color, Label: user})
	if err != nil {
		return err
	}
	joinCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	pub, err := client.Publish(joinCtx, *st.Endpoints.Whip, *tok.ParticipantToken.Token, client.PublishOptions{
		Options:           client.Options{ICEIPs: d.iceIPs, UserAgent: "stagehand-demo/" + version, HTTPClient: d.hc},
		OnKeyframeRequest: src.RequestKeyframe})
	if err != nil {
		src.Close()
		return fmt.Errorf("demo participant %s: %w", user, err)
	}
	d.wg.Go(func() {
		defer src.Close()
		if err := src.Run(ctx, pub.Video, pub.Audio); err != nil {
			d.log.Warn("demo participant", "user", user, "error", err)
		}
		leave, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pub.Close(leave)
	})
	return nil
}

// stop ends the composition (so that its recording is closed) and the
// participants; it runs before the servers shut down.
func (d *demo) stop() {
	d.stopOnce.Do(func() {
		if d.comp != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := d.api.StopComposition(ctx, &rt.StopCompositionInput{Arn: d.comp}); err != nil {
				d.log.Warn("stop demo composition", "error", err)
			}
			for ctx.Err() == nil {
				g, err := d.api.GetComposition(ctx, &rt.GetCompositionInput{Arn: d.comp})
				if err != nil || g.Composition.State == types.CompositionStateStopped ||
					g.Composition.State == types.CompositionStateFailed {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Fprintln(d.stdout, "stagehand: demo: composition stopped, recording closed")
		}
		d.cancel()
		d.wg.Wait()
	})
}
