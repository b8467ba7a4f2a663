package stagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
)

// Loopback are the client options of a participant of the loopback stage.
var Loopback = client.Options{ICEIPs: []string{"127.0.0.1"}}

// PublishSynth publishes a synth source made with cfg as the participant
// of tok on st, with opts (Loopback when they name no ICE IPs; keyframe
// requests go to the source). It publishes until leave is called or the
// test ends; leave may be called again.
func (e *Env) PublishSynth(t testing.TB, st types.Stage, tok types.ParticipantToken, cfg synth.Config,
	opts client.PublishOptions) (leave func()) {
	t.Helper()
	src, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if opts.ICEIPs == nil {
		opts.ICEIPs = Loopback.ICEIPs
	}
	opts.OnKeyframeRequest = src.RequestKeyframe
	p, err := client.Publish(e.Ctx, *st.Endpoints.Whip, *tok.Token, opts)
	if err != nil {
		src.Close()
		t.Fatalf("publish participant %s: %v", *tok.ParticipantId, err)
	}
	ctx, cancel := context.WithCancel(e.Ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = src.Run(ctx, p.Video, p.Audio) })
	var once sync.Once
	leave = func() {
		once.Do(func() {
			// The source stops writing before the tracks it writes to close.
			cancel()
			wg.Wait()
			src.Close()
			_ = p.Close(context.Background())
		})
	}
	t.Cleanup(leave)
	return leave
}

// PublishSimulcastSynth publishes three synth sources made with layers
// (low to high, as synth.SimulcastLayers gives) as the simulcast layers of
// the participant of tok on st; the highest layer's source sends the
// audio. Keyframe requests go to the layer's source. It publishes until
// leave is called or the test ends.
func (e *Env) PublishSimulcastSynth(t testing.TB, st types.Stage, tok types.ParticipantToken, layers []synth.Config,
	opts client.PublishOptions) (leave func()) {
	t.Helper()
	srcs := map[string]*synth.Source{}
	var order []*synth.Source
	closeAll := func() {
		for _, s := range order {
			s.Close()
		}
	}
	for i, cfg := range layers {
		src, err := synth.New(cfg)
		if err != nil {
			closeAll()
			t.Fatal(err)
		}
		srcs[client.SimulcastRIDs[i]] = src
		order = append(order, src)
	}
	if opts.ICEIPs == nil {
		opts.ICEIPs = Loopback.ICEIPs
	}
	opts.Simulcast = true
	opts.OnLayerKeyframeRequest = func(rid string) {
		if s := srcs[rid]; s != nil {
			s.RequestKeyframe()
		}
	}
	opts.OnKeyframeRequest = func() {
		for _, s := range order {
			s.RequestKeyframe()
		}
	}
	p, err := client.Publish(e.Ctx, *st.Endpoints.Whip, *tok.Token, opts)
	if err != nil {
		closeAll()
		t.Fatalf("publish participant %s: %v", *tok.ParticipantId, err)
	}
	ctx, cancel := context.WithCancel(e.Ctx)
	var wg sync.WaitGroup
	for i, src := range order {
		var audio synth.SampleWriter
		if i == len(order)-1 && p.Audio != nil {
			audio = p.Audio
		}
		video := p.Layers[i]
		wg.Go(func() { _ = src.Run(ctx, video, audio) })
	}
	var once sync.Once
	leave = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			closeAll()
			_ = p.Close(context.Background())
		})
	}
	t.Cleanup(leave)
	return leave
}

// WaitPublishing waits until participant pid publishes on st (its
// PUBLISH_STARTED recorded): compositions order tiles by when publishing
// started, which a busy machine may otherwise shuffle.
func (e *Env) WaitPublishing(t testing.TB, st types.Stage, pid string) {
	t.Helper()
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		out, err := e.API.GetStage(e.Ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
		if err != nil {
			return err
		}
		session := aws.ToString(out.Stage.ActiveSessionId)
		if session == "" {
			return fmt.Errorf("no session on stage %s yet", *st.Arn)
		}
		ps, err := e.API.ListParticipants(e.Ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn,
			SessionId: aws.String(session), FilterByPublished: true})
		if err != nil {
			return err
		}
		for _, p := range ps.Participants {
			if aws.ToString(p.ParticipantId) == pid {
				return nil
			}
		}
		return fmt.Errorf("participant %s does not publish yet", pid)
	})
}
