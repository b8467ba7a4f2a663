package client_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// TestPublishOwnTracks: RTP written to a caller's track reaches a
// subscriber with the timestamps it was sent with (the load generator
// keys its latency on them), and a keyframe request (the stage's, for a
// new subscriber) comes back to OnKeyframeRequest.
func TestPublishOwnTracks(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "own-tracks")
	tok := env.Token(t, *st.Arn, "rtp", nil, types.ParticipantTokenCapabilityPublish)
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		"video", "rtp")
	if err != nil {
		t.Fatal(err)
	}
	var plis atomic.Int32
	pub, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{Options: loopback,
		Tracks: []webrtc.TrackLocal{video}, OnKeyframeRequest: func() { plis.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(env.Ctx)
	if pub.Video != nil || pub.Audio != nil {
		t.Error("sample tracks made beside the caller's")
	}
	const base = 0xfffff000 // wraps during the test
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := uint32(0); ; i++ {
			// A VP8 keyframe payload descriptor and a tiny frame header.
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i),
				Timestamp: base + i*3000}, Payload: []byte{0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a}}
			_ = video.WriteRTP(pkt)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-sent }()

	subTok := env.Token(t, *st.Arn, "viewer", nil, types.ParticipantTokenCapabilitySubscribe)
	var got atomic.Int32
	var bad atomic.Uint32
	var sub *client.Subscription
	testkit.WaitFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		sub, err = client.Subscribe(env.Ctx, client.WHEPURL(*st.Endpoints.Whip, *tok.ParticipantId), *subTok.Token,
			loopback, func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				for {
					p, _, err := tr.ReadRTP()
					if err != nil {
						return
					}
					if (p.Timestamp-base)%3000 != 0 {
						bad.Store(p.Timestamp)
					}
					got.Add(1)
				}
			})
		return err // 404 until the track flows
	})
	defer sub.Close(env.Ctx)
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, testkit.Until("packets at the subscriber",
		func() bool { return got.Load() > 20 }))
	if ts := bad.Load(); ts != 0 {
		t.Errorf("timestamp %d is not one sent", ts)
	}
	// The stage asks for a keyframe for each subscriber that connects.
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, testkit.Until("a keyframe request at the publisher",
		func() bool { return plis.Load() > 0 }))
}
