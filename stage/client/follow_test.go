package client_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
)

var loopback = stagetest.Loopback

// frames counts decoded video frames per participant.
type frames struct {
	mu  sync.Mutex
	n   map[string]int
	ids [][]string // the participant sets reported, in order
}

func (f *frames) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[id]
}

func (f *frames) lastSet() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ids) == 0 {
		return nil
	}
	return f.ids[len(f.ids)-1]
}

func (f *frames) onParticipants(ps []stage.ParticipantInfo) {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.UserID)
	}
	f.mu.Lock()
	f.ids = append(f.ids, ids)
	f.mu.Unlock()
}

// onTrack decodes video, asking for keyframes while the decoder needs one.
func (f *frames) onTrack(t *testing.T) func(string, *webrtc.TrackRemote, *client.Subscription) {
	t.Helper()
	return func(id string, tr *webrtc.TrackRemote, sub *client.Subscription) {
		count := func(*astiav.Frame, uint32) {
			f.mu.Lock()
			f.n[id]++
			f.mu.Unlock()
		}
		stagetest.DecodeTrack(t, tr, count, nil, func() { _ = sub.RequestKeyframe(tr) })
	}
}

// publisher is a synth participant on the stage until stopped.
type publisher struct {
	id   string
	stop func()
}

func startPublisher(t *testing.T, env *stagetest.Env, st types.Stage, user string) *publisher {
	t.Helper()
	tok := env.Token(t, *st.Arn, user, map[string]string{"name": user})
	stop := env.PublishSynth(t, st, tok, synth.Config{Width: 320, Height: 180, Label: user}, client.PublishOptions{})
	return &publisher{id: *tok.ParticipantId, stop: stop}
}

// TestFollow: a follower decodes every publisher, present before it or
// joining after, stops with those who leave, and leaves nothing behind.
func TestFollow(t *testing.T) {
	check := testkit.CheckGoroutines(t, testkit.IdleHTTPConns)
	t.Run("stage", func(t *testing.T) {
		env := stagetest.Start(t, stagetest.Options{})
		st := env.CreateStage(t, "follow")
		a := startPublisher(t, env, st, "ann")
		b := startPublisher(t, env, st, "bob")
		tok := env.Token(t, *st.Arn, "worker", nil, types.ParticipantTokenCapabilitySubscribe)
		got := &frames{n: map[string]int{}}
		ctx, cancel := context.WithCancel(env.Ctx)
		done := make(chan error, 1)
		go func() {
			done <- client.Follow(ctx, *st.Endpoints.Events, *st.Endpoints.Whip, *tok.Token, client.FollowOptions{
				Options: loopback, OnParticipants: got.onParticipants, OnTrack: got.onTrack(t)})
		}()
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("frames of ann and bob", func() bool { return got.count(a.id) > 15 && got.count(b.id) > 15 }))
		c := startPublisher(t, env, st, "cy")
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("frames of cy, who joined later", func() bool { return got.count(c.id) > 15 }))
		if set := got.lastSet(); !slices.Equal(set, []string{"ann", "bob", "cy"}) {
			t.Errorf("participants = %v", set)
		}
		a.stop()
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("ann gone from the set", func() bool { return len(got.lastSet()) == 2 }))
		n := got.count(a.id)
		time.Sleep(300 * time.Millisecond)
		if got.count(a.id) != n {
			t.Error("frames of ann after she left")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Follow = %v", err)
		}
	})
	check()
}

// TestFollowRefused: a token the stage refuses ends Follow with the
// stage's reason instead of retrying forever.
func TestFollowRefused(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "refused")
	err := client.Follow(env.Ctx, *st.Endpoints.Events, *st.Endpoints.Whip, "not.a.token", client.FollowOptions{Options: loopback})
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("Follow = %v, want the stage's 401", err)
	}
}
