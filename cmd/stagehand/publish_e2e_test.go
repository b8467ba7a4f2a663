package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/avframe"
	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// decodedTrack decodes a subscribed track and keeps what a test checks.
type decodedTrack struct {
	mu      sync.Mutex
	frames  int
	samples int
	w, h    int
	corner  [3]byte // Y, U, V at (8, 8) of the last video frame
}

func (d *decodedTrack) onVideo(f *astiav.Frame, _ uint32) {
	y, ly := avframe.VideoPlane(f, 0)
	u, lu := avframe.VideoPlane(f, 1)
	v, lv := avframe.VideoPlane(f, 2)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frames++
	d.w, d.h = f.Width(), f.Height()
	d.corner = [3]byte{y[8*ly+8], u[4*lu+4], v[4*lv+4]}
}

func (d *decodedTrack) onAudio(f *astiav.Frame, _ uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.samples += f.NbSamples()
}

// receive decodes every track of a subscription until it ends.
func (d *decodedTrack) receive(t *testing.T, sub func() *client.Subscription) func(*webrtc.TrackRemote, *webrtc.RTPReceiver) {
	t.Helper()
	return func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		stagetest.DecodeTrack(t, tr, d.onVideo, d.onAudio, func() {
			if s := sub(); s != nil {
				_ = s.RequestKeyframe(tr)
			}
		})
	}
}

// TestServePublishSubscribe: `stagehand serve` and `stagehand publish` as a
// user runs them; a Go subscriber decodes the published test pattern and
// tone, and the API tells the participant's story.
func TestServePublishSubscribe(t *testing.T) {
	for _, codec := range []string{"VP8", "H264"} {
		t.Run(codec, func(t *testing.T) { testServePublish(t, codec) })
	}
}

func testServePublish(t *testing.T, codec string) {
	t.Helper()
	url, _ := startServe(t, "--dev", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	api := sdkClient(url, devAccessKeyID, devSecretAccessKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := api.CreateStage(ctx, &rt.CreateStageInput{Name: aws.String("e2e")})
	if err != nil {
		t.Fatal(err)
	}
	st := cs.Stage
	pubTok, err := api.CreateParticipantToken(ctx, &rt.CreateParticipantTokenInput{StageArn: st.Arn, UserId: aws.String("pattern")})
	if err != nil {
		t.Fatal(err)
	}
	subTok, err := api.CreateParticipantToken(ctx, &rt.CreateParticipantTokenInput{StageArn: st.Arn, UserId: aws.String("viewer"),
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
	if err != nil {
		t.Fatal(err)
	}
	events, err := client.DialEvents(ctx, *st.Endpoints.Events, *subTok.ParticipantToken.Token)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()

	out := &testkit.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runPublish(ctx, []string{"--token", *pubTok.ParticipantToken.Token, "--duration", "4s",
			"--color", "red", "--codec", codec, "--ice-ip", "127.0.0.1"}, out, out)
	}()
	pid := *pubTok.ParticipantToken.ParticipantId
	for {
		m, err := events.Next(ctx)
		if err != nil {
			t.Fatalf("events channel: %v (publish said %q)", err, out)
		}
		if m.Type == stage.MsgTracksPublished && m.Participant.ParticipantID == pid {
			if len(m.Participant.Tracks) != 2 || !strings.EqualFold(m.Participant.Tracks[1].Codec, "video/"+codec) {
				t.Errorf("published tracks = %+v", m.Participant.Tracks)
			}
			break
		}
	}
	var d decodedTrack
	var subMu sync.Mutex
	var sub *client.Subscription
	s, err := client.Subscribe(ctx, client.WHEPURL(*st.Endpoints.Whip, pid), *subTok.ParticipantToken.Token,
		client.Options{ICEIPs: []string{"127.0.0.1"}}, d.receive(t, func() *client.Subscription { subMu.Lock(); defer subMu.Unlock(); return sub }))
	if err != nil {
		t.Fatal(err)
	}
	subMu.Lock()
	sub = s
	subMu.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Error("the subscription outlived the publisher")
	}
	_ = s.Close(ctx)
	d.mu.Lock()
	// About 3 s of the 4 s arrive after subscribing.
	if d.frames < 45 || d.w != 640 || d.h != 360 {
		t.Errorf("decoded %d frames of %dx%d, want ≥ 45 of 640x360", d.frames, d.w, d.h)
	}
	if y, u, v := d.corner[0], d.corner[1], d.corner[2]; v < 200 || u > 120 || y < 50 || y > 110 {
		t.Errorf("corner pixel YUV = %d,%d,%d, want red (about 81,90,240)", y, u, v)
	}
	if d.samples < 48000*2 {
		t.Errorf("decoded %d audio samples, want ≥ 2 s at 48 kHz", d.samples)
	}
	d.mu.Unlock()
	if !strings.Contains(out.String(), "publishing as participant "+pid) || !strings.Contains(out.String(), "left the stage") {
		t.Errorf("publish printed %q", out)
	}

	// The API's view: one session, ended; the publisher's events in order.
	var session string
	testkit.WaitFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		ls, err := api.ListStageSessions(ctx, &rt.ListStageSessionsInput{StageArn: st.Arn})
		if err != nil {
			t.Fatal(err)
		}
		if len(ls.StageSessions) != 1 || ls.StageSessions[0].EndTime == nil {
			return fmt.Errorf("sessions = %+v, want one that ended", ls.StageSessions)
		}
		session = *ls.StageSessions[0].SessionId
		return nil
	})
	ev, err := api.ListParticipantEvents(ctx, &rt.ListParticipantEventsInput{StageArn: st.Arn, SessionId: &session, ParticipantId: &pid})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ev.Events {
		names = append(names, string(e.Name))
	}
	if want := []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"}; !slices.Equal(names, want) {
		t.Errorf("events = %v, want %v", names, want)
	}
	gp, err := api.GetParticipant(ctx, &rt.GetParticipantInput{StageArn: st.Arn, SessionId: &session, ParticipantId: &pid})
	if err != nil {
		t.Fatal(err)
	}
	if p := gp.Participant; p.State != types.ParticipantStateDisconnected || !p.Published || aws.ToString(p.UserId) != "pattern" || aws.ToString(p.SdkVersion) != version {
		t.Errorf("participant = state %s published %v user %q sdk %q", p.State, p.Published, aws.ToString(p.UserId), aws.ToString(p.SdkVersion))
	}
}
