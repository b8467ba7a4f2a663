package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// TestWorkerCommand: `stagehand worker` on the NATS of a `serve
// --no-worker` runs the composition the API queued.
func TestWorkerCommand(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := l.Addr().String()
	l.Close()
	serveDir := t.TempDir()
	url, _ := startServe(t, "--dev", "--no-worker", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0", "--nats-addr", natsAddr, "--data-dir", serveDir)
	c := sdkClient(url, devAccessKeyID, devSecretAccessKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	workerDir := t.TempDir()
	wctx, stopWorker := context.WithCancel(ctx)
	wout := &testkit.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		// It logs in with the worker credentials serve wrote: the worker
		// role, whose tokens serve mints.
		done <- runWorker(wctx, []string{"--nats-url", "nats://" + natsAddr, "--data-dir", workerDir,
			"--nats-creds", filepath.Join(serveDir, "nats-secrets", "worker", "worker.creds"), "--ice-ip", "127.0.0.1",
			"--metrics-addr", ""}, wout, wout)
	}()
	defer func() {
		stopWorker()
		if err := <-done; err != nil {
			t.Errorf("worker: %v\n%s", err, wout)
		}
	}()

	st, err := c.CreateStage(ctx, &rt.CreateStageInput{Name: aws.String("fleet")})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateParticipantToken(ctx, &rt.CreateParticipantTokenInput{StageArn: st.Stage.Arn, UserId: aws.String("pub")})
	if err != nil {
		t.Fatal(err)
	}
	pubDone := make(chan error, 1)
	go func() {
		pubDone <- runPublish(ctx, []string{"--token", *tok.ParticipantToken.Token, "--duration", "8s", "--size", "320x180", "--ice-ip", "127.0.0.1"}, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	enc, err := c.CreateEncoderConfiguration(ctx, &rt.CreateEncoderConfigurationInput{Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(180)}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.CreateStorageConfiguration(ctx, &rt.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("fleet-rec")}})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := c.StartComposition(ctx, &rt.StartCompositionInput{StageArn: st.Stage.Arn, Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
		StorageConfigurationArn: sc.StorageConfiguration.Arn, EncoderConfigurationArns: []string{*enc.EncoderConfiguration.Arn}}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitComposition := func(want types.CompositionState) *types.Composition {
		var got *types.Composition
		testkit.WaitFor(t, 15*time.Second, 100*time.Millisecond, func() error {
			g, err := c.GetComposition(ctx, &rt.GetCompositionInput{Arn: comp.Composition.Arn})
			if err != nil {
				t.Fatal(err)
			}
			if got = g.Composition; got.State != want {
				return fmt.Errorf("composition is %s, want %s\nworker said:\n%s", got.State, want, wout)
			}
			return nil
		})
		return got
	}
	waitComposition(types.CompositionStateActive)
	time.Sleep(3 * time.Second)
	if _, err := c.StopComposition(ctx, &rt.StopCompositionInput{Arn: comp.Composition.Arn}); err != nil {
		t.Fatal(err)
	}
	stopped := waitComposition(types.CompositionStateStopped)
	prefix := *stopped.Destinations[0].Detail.S3.RecordingPrefix
	pl := filepath.Join(workerDir, "buckets", "fleet-rec", filepath.FromSlash(prefix), "media", "hls", "180p30", "playlist.m3u8")
	b, err := os.ReadFile(pl)
	if err != nil || !strings.Contains(string(b), "#EXT-X-ENDLIST") {
		t.Errorf("the worker's recording %s: %v\n%s", pl, err, b)
	}
	if err := <-pubDone; err != nil {
		t.Errorf("publish: %v", err)
	}
}

func TestWorkerFlags(t *testing.T) {
	t.Setenv("STAGEHAND_NATS_URL", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--nats-url"},
		{[]string{"--nats-url", "nats://x", "--replicas", "2"}, "--replicas"},
		{[]string{"--nats-url", "nats://x", "--capacity", "-1"}, "--capacity"},
		{[]string{"--nats-url", "nats://x", "--s3-endpoint", "http://h"}, "--s3-access-key-id"},
		{[]string{"--nats-url", "nats://x", "--channel", "x"}, "ARN=URL"},
		{[]string{"--nats-url", "nats://127.0.0.1:4222"}, "no NATS credentials"},
		{[]string{"--nats-url", "nats://nats1:4222", "--nats-creds", "f"}, "--nats-tls-ca"},
	} {
		_, err := parseWorkerFlags(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("worker %v: %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
