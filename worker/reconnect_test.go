package worker_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/worker"
)

// TestCompositionReconnect: when the stage's node is lost and another
// serves the stage, the composition stays ACTIVE, follows the publishers to
// their new connections (the worker's Follow and the publishers reconnect
// by themselves) and shows both of them again, one tile each.
func TestCompositionReconnect(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "moved")
	publish(t, env, st, "red", "red")
	publish(t, env, st, "blue", "blue")
	buckets := t.TempDir()
	runWorker(t, env, worker.Config{BucketsDir: buckets, ICEIPs: loopback.ICEIPs, Heartbeat: time.Second})
	enc := encoderConfig(t, env, 640, 360, 1_000_000)
	sc := storageConfig(t, env, "moved")
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc},
			RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{
				TargetSegmentDurationSeconds: aws.Int32(2)}},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Composition.Arn
	active, _ := waitState(t, env, arn, types.CompositionStateActive, 15*time.Second)
	prefix := *active.Destinations[0].Detail.S3.RecordingPrefix
	pl := filepath.Join(buckets, "moved", filepath.FromSlash(prefix), "media", "hls", "360p30", "playlist.m3u8")
	testkit.WaitFor(t, 20*time.Second, 100*time.Millisecond, testkit.Until("a first segment", func() bool {
		segs, _ := playlistSegments(t, pl)
		return len(segs) >= 1
	}))

	env.RestartStage(t, 300*time.Millisecond)
	segs, _ := playlistSegments(t, pl)
	before := len(segs)
	// Three segments (6 s) recorded after the restart: time for both to
	// come back and show.
	testkit.WaitFor(t, 40*time.Second, 200*time.Millisecond, func() error {
		segs, _ := playlistSegments(t, pl)
		if len(segs) < before+3 {
			return fmt.Errorf("%d segments, want %d", len(segs), before+3)
		}
		return nil
	})
	if c := state(t, env, arn); c.State != types.CompositionStateActive {
		t.Fatalf("composition %s after the stage moved, want ACTIVE", c.State)
	}
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: arn}); err != nil {
		t.Fatal(err)
	}
	waitState(t, env, arn, types.CompositionStateStopped, 15*time.Second)
	w, h, dur := testmedia.ProbeVideo(t, pl)
	if w != 640 || h != 360 {
		t.Fatalf("recording is %dx%d", w, h)
	}
	// The last second: both publishers back, one tile each, whatever order
	// they came back in.
	rgb := frameAt(t, pl, dur-1, 640, 360)
	left, right := pixel(rgb, 640, 160, 120), pixel(rgb, 640, 480, 120)
	isRed := func(p [3]byte) bool { return p[0] > 180 && p[1] < 80 && p[2] < 80 }
	isBlue := func(p [3]byte) bool { return p[2] > 180 && p[0] < 80 && p[1] < 80 }
	if !(isRed(left) && isBlue(right)) && !(isBlue(left) && isRed(right)) {
		t.Errorf("tiles after the move are %v and %v, want a red one and a blue one", left, right)
	}
}
