package worker_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/worker"
)

// waitDestination waits until destination i of the composition is in state want.
func waitDestination(t *testing.T, env *stagetest.Env, arn *string, i int, want types.DestinationState, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	testkit.WaitFor(t, within, 100*time.Millisecond, func() error {
		if got := state(t, env, arn).Destinations[i].State; got != want {
			return fmt.Errorf("destination %d is %s, want %s", i, got, want)
		}
		return nil
	})
	return time.Since(start)
}

// TestChannelFailureLeavesRecording: a channel whose RTMP server is gone is
// RECONNECTING, then FAILED after RTMPRetryFor, while the S3 recording of
// the same composition goes on and the composition stays ACTIVE.
func TestChannelFailureLeavesRecording(t *testing.T) {
	const channel = "arn:aws:ivs:us-east-1:123456789012:channel/deadDEAD1234"
	channels := map[string]string{channel: fmt.Sprintf("rtmp://127.0.0.1:%d/live/gone", testserver.FreePort(t))}
	env := stagetest.Start(t, stagetest.Options{Channels: channels})
	st := env.CreateStage(t, "rtmpfail")
	publish(t, env, st, "one", "olive")
	buckets := t.TempDir()
	runWorker(t, env, worker.Config{BucketsDir: buckets, Channels: channels, RTMPRetryFor: 2 * time.Second})
	enc := encoderConfig(t, env, 320, 180, 300_000)
	sc := storageConfig(t, env, "rtmpfail")
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(channel), EncoderConfigurationArn: enc}},
			{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc},
				RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}}}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	comp, _ := waitState(t, env, out.Composition.Arn, types.CompositionStateActive, 15*time.Second)
	took := waitDestination(t, env, out.Composition.Arn, 0, types.DestinationStateFailed, 15*time.Second)
	t.Logf("channel destination FAILED %s after ACTIVE (RTMPRetryFor 2 s)", took.Round(100*time.Millisecond))
	pl := filepath.Join(buckets, "rtmpfail", filepath.FromSlash(*comp.Destinations[1].Detail.S3.RecordingPrefix), "media", "hls", "180p30", "playlist.m3u8")
	before, _ := playlistSegments(t, pl)
	time.Sleep(4500 * time.Millisecond)
	after, _ := playlistSegments(t, pl)
	if len(after) < len(before)+2 {
		t.Errorf("the recording went from %d to %d segments in 4.5 s after the channel failed", len(before), len(after))
	}
	c := state(t, env, out.Composition.Arn)
	if c.State != types.CompositionStateActive || c.Destinations[1].State != types.DestinationStateActive {
		t.Errorf("composition %s, S3 destination %s; want both ACTIVE", c.State, c.Destinations[1].State)
	}
}

// TestSpoolLimit: with the object store down, segments wait in the spool;
// at its limit the recording fails (it does not fill the disk), the metric
// shows the spool, the composition, with no destination left, ends FAILED
// with the reason, and what was spooled is uploaded once the store is back.
func TestSpoolLimit(t *testing.T) {
	s3srv := testserver.StartS3(t)
	clientCfg := upload.ClientConfig{Endpoint: s3srv.Endpoint, AccessKey: s3srv.AccessKey, SecretKey: s3srv.SecretKey, PathStyle: true}
	s3c := upload.NewClient(clientCfg)
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("spooled")}); err != nil {
		t.Fatal(err)
	}
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "spool")
	publish(t, env, st, "one", "navy")
	s3srv.Stop()
	const limit = 150_000 // two segments of 2 s at 300 kbps
	w := runWorkerHandle(t, env, worker.Config{S3: &clientCfg, SpoolDir: t.TempDir(), SpoolLimit: limit})
	comp := startRecording(t, env, st, "spooled")
	took := waitDestination(t, env, comp.Arn, 0, types.DestinationStateFailed, 20*time.Second)
	t.Logf("recording FAILED %s after ACTIVE, the spool at its limit of %d bytes", took.Round(100*time.Millisecond), limit)
	if got := gauge(t, w.Collectors(), "stagehand_worker_spool_bytes"); got < limit*0.5 {
		t.Errorf("spool metric %.0f bytes, want about the limit %d", got, limit)
	}
	s3srv.Start()
	// Its only destination failed: the composition ends FAILED, saying why,
	// once the spool is uploaded.
	waitState(t, env, comp.Arn, types.CompositionStateFailed, 40*time.Second)
	id := (*comp.Arn)[strings.LastIndex(*comp.Arn, "/")+1:]
	if c, err := env.Store.Compositions.Get(env.Ctx, id); err != nil || !strings.Contains(c.Run.Reason, "spool is full") {
		t.Errorf("failure reason %q (%v), want the full spool named", c.Run.Reason, err)
	}
	prefix := *comp.Destinations[0].Detail.S3.RecordingPrefix
	list, err := s3c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("spooled"), Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, o := range list.Contents {
		stored[strings.TrimPrefix(*o.Key, prefix+"/")] = true
	}
	segs, _ := playlistSegments(t, filepath.Join(s3srv.Root, "spooled", filepath.FromSlash(prefix), "media", "hls", "180p30", "playlist.m3u8"))
	if len(segs) == 0 {
		t.Fatalf("no stored playlist with segments; stored %v", stored)
	}
	for _, s := range segs {
		if !stored["media/hls/180p30/"+segName(s)] {
			t.Errorf("segment %s is in the playlist but was not uploaded", segName(s))
		}
	}
	if !stored["events/recording-failed.json"] {
		t.Errorf("no recording-failed event stored: %v", stored)
	}
	if got := gauge(t, w.Collectors(), "stagehand_worker_spool_bytes"); got != 0 {
		t.Errorf("spool metric %.0f bytes after the uploads, want 0", got)
	}
	// The segments waited out the outage in the spool: the upload delay
	// says how far behind the bucket was.
	n, sum := histogram(t, w.Collectors(), "stagehand_worker_upload_delay_seconds")
	if n < uint64(len(segs)) || sum < 1 {
		t.Errorf("upload delay: %d observations summing to %.2f s; want at least %d segments, delayed by the outage", n, sum, len(segs))
	}
}

func histogram(t *testing.T, cs []prometheus.Collector, name string) (count uint64, sum float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0, 0
}

func gauge(t *testing.T, cs []prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestHandoffWithChannelDown: a worker stopped while its channel's RTMP
// server is down hands the composition off at once (the reconnecting
// destination stops trying; the claim is heartbeaten until the run has
// ended), and the other worker goes on with the recording: the composition
// never leaves ACTIVE.
func TestHandoffWithChannelDown(t *testing.T) {
	const channel = "arn:aws:ivs:us-east-1:123456789012:channel/deadDEAD5678"
	channels := map[string]string{channel: fmt.Sprintf("rtmp://127.0.0.1:%d/live/gone", testserver.FreePort(t))}
	env := stagetest.Start(t, stagetest.Options{Channels: channels})
	st := env.CreateStage(t, "handoff-down")
	publish(t, env, st, "one", "teal")
	buckets := t.TempDir()
	cfg := worker.Config{BucketsDir: buckets, Channels: channels, RTMPRetryFor: time.Hour}
	cfg.ID = "first"
	stopFirst := runWorker(t, env, cfg)
	enc := encoderConfig(t, env, 320, 180, 300_000)
	sc := storageConfig(t, env, "handoff-down")
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(channel), EncoderConfigurationArn: enc}},
			{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc},
				RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{
					TargetSegmentDurationSeconds: aws.Int32(2)}}}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	comp, _ := waitState(t, env, out.Composition.Arn, types.CompositionStateActive, 15*time.Second)
	waitDestination(t, env, out.Composition.Arn, 0, types.DestinationStateReconnecting, 15*time.Second)
	cfg.ID = "second"
	runWorker(t, env, cfg)
	start := time.Now()
	stopFirst()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the first worker took %s to stop with its channel reconnecting", took.Round(time.Millisecond))
	}
	pl := filepath.Join(buckets, "handoff-down", filepath.FromSlash(*comp.Destinations[1].Detail.S3.RecordingPrefix),
		"media", "hls", "180p30", "playlist.m3u8")
	testkit.WaitFor(t, 20*time.Second, 100*time.Millisecond, testkit.Until("the second worker's first segment",
		func() bool {
			segs, _ := playlistSegments(t, pl)
			return slices.ContainsFunc(segs, func(s ivsrec.Segment) bool { return s.Discontinuity })
		}))
	t.Logf("stopped and resumed %s after the stop began", time.Since(start).Round(10*time.Millisecond))
	if c := state(t, env, out.Composition.Arn); c.State != types.CompositionStateActive {
		t.Errorf("composition %s after the hand-off, want ACTIVE", c.State)
	}
}
