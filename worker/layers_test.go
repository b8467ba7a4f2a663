package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/promtest"
	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/worker"
)

// TestLayerAwareComposition: a composition receives each simulcast
// publisher in the smallest layer that covers its tile, and switches when
// the layout changes. Two publishers side by side on a 640x360 canvas get
// tiles about 318x179: their 320x180 layers (of 640x360, 320x180 and
// 160x90). A featured publisher joins: its tile takes two thirds of the
// canvas, so it is received in its 640x360 layer, the others in 320x180
// still (their tiles shrink to 212x120). The featured one and one other
// leave: the last fills the canvas, from its 640x360 layer.
func TestLayerAwareComposition(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "layers")
	layers := synth.SimulcastLayers(synth.Config{Width: 640, Height: 360, FPS: 15, VideoBitrate: 600_000})
	var ids []string
	var leave []func()
	for _, name := range []string{"left", "right"} {
		tok := env.Token(t, *st.Arn, name, nil)
		leave = append(leave, env.PublishSimulcastSynth(t, st, tok, layers, client.PublishOptions{NoAudio: true}))
		ids = append(ids, *tok.ParticipantId)
	}
	w := runWorkerHandle(t, env, worker.Config{BucketsDir: t.TempDir()})
	enc := encoderConfig(t, env, 640, 360, 600_000)
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Layout: &types.LayoutConfiguration{Grid: &types.GridConfiguration{GridGap: 4,
			FeaturedParticipantAttribute: aws.String("featured")}},
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: storageConfig(t, env, "layers"), EncoderConfigurationArns: []string{*enc}}}}})
	if err != nil {
		t.Fatal(err)
	}
	comp, _ := waitState(t, env, out.Composition.Arn, types.CompositionStateActive, 20*time.Second)
	id := (*comp.Arn)[len(*comp.Arn)-12:]
	height := func(pid string) float64 {
		return promtest.Value(t, w.Collectors(), "stagehand_worker_input_height", "composition", id, "participant", pid)
	}
	waitHeight := func(pid string, want float64, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		testkit.WaitFor(t, within, 50*time.Millisecond, func() error {
			if got := height(pid); got != want {
				return fmt.Errorf("participant %s decoded at height %v, want %v", pid, got, want)
			}
			return nil
		})
		return time.Since(start)
	}
	for _, pid := range ids {
		waitHeight(pid, 180, 20*time.Second)
	}
	star := env.Token(t, *st.Arn, "star", map[string]string{"featured": "true"})
	leaveStar := env.PublishSimulcastSynth(t, st, star, layers, client.PublishOptions{NoAudio: true})
	featured := waitHeight(*star.ParticipantId, 360, 20*time.Second)
	for _, pid := range ids {
		if got := height(pid); got != 180 {
			t.Errorf("participant %s decoded at height %v beside the featured one, want 180", pid, got)
		}
	}
	leaveStar()
	leave[0]()
	alone := waitHeight(ids[1], 360, 20*time.Second)
	t.Logf("two tiles: both from the 320x180 layer; a featured one joined: 640x360 in %s; alone: 640x360 in %s",
		featured.Round(10*time.Millisecond), alone.Round(10*time.Millisecond))
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: comp.Arn}); err != nil {
		t.Fatal(err)
	}
	waitState(t, env, comp.Arn, types.CompositionStateStopped, 15*time.Second)
}
