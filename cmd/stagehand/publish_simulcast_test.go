package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// TestPublishSimulcast: `stagehand publish --simulcast` sends three
// layers; subscribers asking for the low and the high one decode
// pictures of a quarter and of the full --size, and the audio comes with
// them.
func TestPublishSimulcast(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "cli-simulcast")
	tok := env.Token(t, *st.Arn, "cli", nil)
	ctx, cancel := context.WithCancel(env.Ctx)
	defer cancel()
	out, errOut := &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runPublish(ctx, []string{"--token", *tok.Token, "--simulcast", "--size", "640x360", "--fps", "15",
			"--bitrate", "600000", "--ice-ip", "127.0.0.1"}, out, errOut)
	}()
	testkit.WaitFor(t, 20*time.Second, 50*time.Millisecond,
		testkit.Until("publishing", func() bool { return strings.Contains(out.String(), "publishing as") }))
	if !strings.Contains(out.String(), "VP8 160x90+320x180+640x360@15") {
		t.Errorf("publish said %q, want the three layers' sizes", out)
	}
	for _, c := range []struct {
		layer string
		w, h  int
	}{{"low", 160, 90}, {"high", 640, 360}} {
		viewer := env.Token(t, *st.Arn, "viewer-"+c.layer, nil, types.ParticipantTokenCapabilitySubscribe)
		d := &decodedTrack{}
		var sub *client.Subscription
		var mu sync.Mutex
		s, err := client.Subscribe(env.Ctx, client.LayerURL(client.WHEPURL(*st.Endpoints.Whip, *tok.ParticipantId),
			c.layer), *viewer.Token, stagetest.Loopback, func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			stagetest.DecodeTrack(t, tr, func(f *astiav.Frame, ts uint32) {
				if f.Width() != c.w || f.Height() != c.h {
					t.Errorf("layer %s: a %dx%d frame, want %dx%d", c.layer, f.Width(), f.Height(), c.w, c.h)
				}
				d.onVideo(f, ts)
			}, d.onAudio, func() {
				mu.Lock()
				defer mu.Unlock()
				if sub != nil {
					_ = sub.RequestKeyframe(tr)
				}
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		sub = s
		mu.Unlock()
		testkit.WaitFor(t, 20*time.Second, 50*time.Millisecond, func() error {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.frames < 15 || d.samples < 48000 {
				return fmt.Errorf("layer %s: %d frames (%dx%d), %d audio samples decoded", c.layer, d.frames, d.w, d.h,
					d.samples)
			}
			return nil
		})
		_ = s.Close(context.Background())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("publish --simulcast = %v\n%s%s", err, out, errOut)
	}
}
