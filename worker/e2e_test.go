package worker_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/worker"
)

var colours = map[string][3]byte{"red": {255, 0, 0}, "lime": {0, 255, 0}, "blue": {0, 0, 255}}

// leaver is a publisher that can leave mid-test.
func leaver(t *testing.T, env *stagetest.Env, st types.Stage, colour string) (leave func()) {
	t.Helper()
	tok := env.Token(t, *st.Arn, colour, nil)
	leave = env.PublishSynth(t, st, tok, synth.Config{Width: 320, Height: 180, Color: colour}, client.PublishOptions{})
	env.WaitPublishing(t, st, *tok.ParticipantId) // the tiles follow the order of publishing
	return leave
}

// TestCompositeEndToEnd: three publishers, a grid with gridGap 10 (or a
// PiP), both destinations at once (nginx-rtmp behind TLS, versitygw); one
// publisher leaves half-way and the layout reflows. The recordings'
// frames show each colour where the layout engine puts its tile.
func TestCompositeEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout types.LayoutConfiguration
	}{
		{"grid", types.LayoutConfiguration{Grid: &types.GridConfiguration{GridGap: 10}}},
		{"pip", types.LayoutConfiguration{Pip: &types.PipConfiguration{PipParticipantAttribute: aws.String("pip")}}},
	} {
		t.Run(tc.name, func(t *testing.T) { testCompositeEndToEnd(t, tc.layout) })
	}
}

func testCompositeEndToEnd(t *testing.T, lc types.LayoutConfiguration) {
	t.Helper()
	rtmpServer := testserver.StartRTMP(t)
	s3srv := testserver.StartS3(t)
	s3cfg := upload.ClientConfig{Endpoint: s3srv.Endpoint, AccessKey: s3srv.AccessKey, SecretKey: s3srv.SecretKey, PathStyle: true}
	if _, err := upload.NewClient(s3cfg).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("e2e")}); err != nil {
		t.Fatal(err)
	}
	const channel = "arn:aws:ivs:us-east-1:123456789012:channel/e2eE2Ee2eE2E"
	channels := map[string]string{channel: rtmpServer.TLSURL("e2e")}
	env := stagetest.Start(t, stagetest.Options{Channels: channels})
	st := env.CreateStage(t, "e2e")
	leaveRed := leaver(t, env, st, "red")
	leaver(t, env, st, "lime")
	leaver(t, env, st, "blue")
	runWorker(t, env, worker.Config{S3: &s3cfg, SpoolDir: t.TempDir(), Channels: channels, RTMPSCAFile: rtmpServer.CAFile,
		ICEIPs: loopback.ICEIPs})
	enc := encoderConfig(t, env, 640, 360, 1_000_000)
	sc := storageConfig(t, env, "e2e")
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn, Layout: &lc,
		Destinations: []types.DestinationConfiguration{
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(channel), EncoderConfigurationArn: enc}},
			{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: sc,
				EncoderConfigurationArns: []string{*enc},
				RecordingConfiguration:   &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}}}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Composition.Arn
	waitState(t, env, arn, types.CompositionStateActive, 15*time.Second)
	time.Sleep(5 * time.Second)
	leaveRed()
	time.Sleep(5 * time.Second)
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: arn}); err != nil {
		t.Fatal(err)
	}
	stopped, took := waitState(t, env, arn, types.CompositionStateStopped, 10*time.Second)
	t.Logf("StopComposition → STOPPED (RTMPS closed, S3 uploads done) in %v", took.Round(time.Millisecond))
	for _, d := range stopped.Destinations {
		if d.State != types.DestinationStateStopped || d.StartTime == nil || d.EndTime == nil {
			t.Errorf("destination %s: %s, %v..%v", *d.Id, d.State, d.StartTime, d.EndTime)
		}
	}

	// Where the layout engine puts the tiles with three, then two, participants.
	gap := 10
	cfg := ivs.LayoutFrom(layout.Config{Grid: &layout.GridConfig{GridGap: &gap}})
	if lc.Pip != nil {
		cfg = ivs.LayoutFrom(layout.Config{PiP: &layout.PipConfig{PipParticipantAttribute: "pip"}})
	}
	canvas := layout.Size{W: 640, H: 360}
	three, err := layout.Compute(canvas, []layout.Participant{{ID: "red"}, {ID: "lime"}, {ID: "blue"}}, cfg.Config())
	if err != nil {
		t.Fatal(err)
	}
	two, err := layout.Compute(canvas, []layout.Participant{{ID: "lime"}, {ID: "blue"}}, cfg.Config())
	if err != nil {
		t.Fatal(err)
	}

	prefix := *stopped.Destinations[1].Detail.S3.RecordingPrefix
	pl := filepath.Join(s3srv.Root, "e2e", filepath.FromSlash(prefix), "media", "hls", "360p30", "playlist.m3u8")
	recs := rtmpServer.Recordings("e2e")
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %v, want one stream", recs)
	}
	for name, path := range map[string]string{"S3 HLS": pl, "RTMPS": recs[0]} {
		w, h, dur := testmedia.ProbeVideo(t, path)
		if w != 640 || h != 360 || dur < 8 {
			t.Errorf("%s: %dx%d, %.1f s; want 640x360, ≥ 8 s", name, w, h, dur)
			continue
		}
		checkTiles(t, name+" before the leave", frameAt(t, path, 3, 640, 360), three)
		checkTiles(t, name+" after the leave", frameAt(t, path, dur-1.5, 640, 360), two)
	}
}

// checkTiles checks the colour at the middle of each tile's top quarter
// (above the synth's clock and any label).
func checkTiles(t *testing.T, what string, rgb []byte, l layout.Layout) {
	t.Helper()
	for _, tile := range l.Tiles {
		r := tile.Video
		x, y := r.X+r.W/2, r.Y+r.H/4
		got, want := pixel(rgb, 640, x, y), colours[tile.ID]
		for i := range 3 {
			if d := int(got[i]) - int(want[i]); d > 60 || d < -60 {
				t.Errorf("%s: %s's tile at (%d,%d) is %v, want about %v", what, tile.ID, x, y, got, want)
				break
			}
		}
	}
}
