package stagetest

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

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
