package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// startServe runs `stagehand serve` with args until the test ends or stop
// is called; it returns the API URL.
func startServe(t *testing.T, args ...string) (url string, stop func()) {
	t.Helper()
	url, stop, _ = startServeOutput(t, args...)
	return url, stop
}

// startServeOutput is startServe that also returns what serve prints.
func startServeOutput(t *testing.T, args ...string) (url string, stop func(), out *testkit.SyncBuffer) {
	t.Helper()
	cfg, err := parseServeFlags(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	// Serves run at once in tests: no fixed ingest ports.
	if !slices.Contains(args, "--rtmp-addr") {
		cfg.Ingest.RTMPAddr = "127.0.0.1:0"
	}
	if !slices.Contains(args, "--rtmps-addr") {
		cfg.Ingest.RTMPSAddr = "127.0.0.1:0"
	}
	addr := make(chan string, 1)
	cfg.onListen = func(a string) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out = &testkit.SyncBuffer{}
	go func() { done <- serve(ctx, cfg, out, out) }()
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve ended: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve did not start\n%s", out)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v\n%s", err, out)
			}
			if !strings.Contains(out.String(), "stagehand: stopped") {
				t.Errorf("no clean stop:\n%s", out)
			}
		})
	}
	t.Cleanup(stop)
	return url, stop, out
}

func sdkClient(url, key, secret string) *rt.Client {
	return regionClient("us-east-1", url, key, secret)
}

func regionClient(region, url, key, secret string) *rt.Client {
	return rt.New(rt.Options{Region: region, BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
}

// TestServeKeepsStateAcrossRestarts creates resources, restarts the server
// on the same data directory and reads them back.
func TestServeKeepsStateAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--data-dir", dir,
		"--access-key-id", "AKIATEST", "--secret-access-key", "s3cret", "--region", "eu-west-1", "--account-id", "111122223333"}
	url, stop := startServe(t, args...)
	ctx := context.Background()
	c := regionClient("eu-west-1", url, "AKIATEST", "s3cret")
	st, err := c.CreateStage(ctx, &rt.CreateStageInput{Name: aws.String("kept"), Tags: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(*st.Stage.Arn, "arn:aws:ivs:eu-west-1:111122223333:stage/") {
		t.Errorf("ARN %s does not carry the configured region and account", *st.Stage.Arn)
	}
	enc, err := c.CreateEncoderConfiguration(ctx, &rt.CreateEncoderConfigurationInput{Video: &types.Video{Width: aws.Int32(640), Height: aws.Int32(360)}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.CreateStorageConfiguration(ctx, &rt.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("rec")}})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := c.StartComposition(ctx, &rt.StartCompositionInput{StageArn: st.Stage.Arn, Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
		StorageConfigurationArn: sc.StorageConfiguration.Arn, EncoderConfigurationArns: []string{*enc.EncoderConfiguration.Arn}}}}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateParticipantToken(ctx, &rt.CreateParticipantTokenInput{StageArn: st.Stage.Arn})
	if err != nil {
		t.Fatal(err)
	}
	stop()

	url, _ = startServe(t, args...)
	c = regionClient("eu-west-1", url, "AKIATEST", "s3cret")
	gs, err := c.GetStage(ctx, &rt.GetStageInput{Arn: st.Stage.Arn})
	if err != nil || *gs.Stage.Name != "kept" || gs.Stage.Tags["k"] != "v" {
		t.Fatalf("stage after restart: %+v %v", gs, err)
	}
	ge, err := c.GetEncoderConfiguration(ctx, &rt.GetEncoderConfigurationInput{Arn: enc.EncoderConfiguration.Arn})
	if err != nil || *ge.EncoderConfiguration.Video.Width != 640 {
		t.Fatalf("encoder after restart: %+v %v", ge, err)
	}
	// The composition survived and runs again on the new process's worker
	// (the old one handed it back to the queue when it stopped).
	testkit.WaitFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		gc, err := c.GetComposition(ctx, &rt.GetCompositionInput{Arn: comp.Composition.Arn})
		if err != nil {
			t.Fatalf("composition after restart: %v", err)
		}
		if gc.Composition.State != types.CompositionStateActive {
			return fmt.Errorf("composition after restart is %s, want it ACTIVE again", gc.Composition.State)
		}
		return nil
	})
	// The signing key survived too: a second token has the same header.
	tok2, err := c.CreateParticipantToken(ctx, &rt.CreateParticipantTokenInput{StageArn: st.Stage.Arn})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Split(*tok.ParticipantToken.Token, ".")[0] != strings.Split(*tok2.ParticipantToken.Token, ".")[0] {
		t.Error("token header changed across a restart")
	}
}

func TestServeDevCredentials(t *testing.T) {
	url, _ := startServe(t, "--dev", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	if _, err := sdkClient(url, devAccessKeyID, devSecretAccessKey).ListStages(context.Background(), &rt.ListStagesInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sdkClient(url, devAccessKeyID, "wrong").ListStages(context.Background(), &rt.ListStagesInput{}); err == nil {
		t.Fatal("--dev accepted a wrong secret")
	}
}

func TestServeRefusesBadStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().String()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{}, "no API credentials"},
		{[]string{"--no-auth"}, "--dev"},
		{[]string{"--dev", "--account-id", "12"}, "12 digits"},
		{[]string{"--dev", "--region", "US East"}, "--region"},
		{[]string{"--access-key-id", "a"}, "both"},
		{[]string{"--dev", "--replicas", "2"}, "--replicas"},
		{[]string{"--dev", "--channel", "nonsense"}, "ARN=URL"},
		{[]string{"--dev", "--api-addr", port, "--data-dir", t.TempDir()}, "address already in use"},
		{[]string{"--dev", "--api-addr", "127.0.0.1:0", "--stage-addr", port, "--data-dir", t.TempDir()}, "stage address"},
		{[]string{"--dev", "--stage-addr", "nonsense"}, "--stage-addr"},
		{[]string{"--dev", "--ice-ip", "localhost"}, "not an IP address"},
		{[]string{"--dev", "--stage-url", "ftp://x"}, "--stage-url"},
		{[]string{"--dev", "--no-auth", "--api-addr", "0.0.0.0:8690"}, "loopback"},
		{[]string{"--dev", "--tls-cert", "c.pem"}, "--tls-key"},
		{[]string{"--access-key-id", "a", "--secret-access-key", "b", "--tls"}, "self-signed"},
		{[]string{"--dev", "--metrics-addr", "nonsense"}, "--metrics-addr"},
		{[]string{"--dev", "--pprof"}, "--pprof needs --metrics-addr"},
		{[]string{"--dev", "--s3-endpoint", "http://127.0.0.1:1"}, "--s3-access-key-id"},
		{[]string{"--dev", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0", "--nats-addr", port, "--data-dir", t.TempDir()}, "address already in use"},
		{[]string{"--dev", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--channel", "arn:aws:ivs:us-east-1:123456789012:stage/x=rtmp://h/a/k"}, "not an IVS channel ARN"},
	}
	t.Setenv("STAGEHAND_ACCESS_KEY_ID", "")
	t.Setenv("STAGEHAND_SECRET_ACCESS_KEY", "")
	for _, tc := range cases {
		var stderr bytes.Buffer
		err := runServe(context.Background(), tc.args, &bytes.Buffer{}, &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.want) {
			t.Errorf("serve %v: err %v (stderr %q), want it to mention %q", tc.args, err, stderr.String(), tc.want)
		}
	}
}
