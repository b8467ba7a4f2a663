package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
)

// reconnects records the OnReconnect calls of one client.
type reconnects struct {
	mu   sync.Mutex
	took []time.Duration
	n    []int // attempts
}

func (r *reconnects) on(attempts int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n = append(r.n, attempts)
	r.took = append(r.took, took)
}

func (r *reconnects) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.took)
}

func (r *reconnects) last() (int, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[len(r.n)-1], r.took[len(r.took)-1]
}

// publishing reports whether a new events watcher of the stage is told
// that participant id publishes.
func publishing(env *stagetest.Env, st types.Stage, tok, id string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(env.Ctx, 5*time.Second)
		defer cancel()
		ev, err := client.DialEvents(ctx, *st.Endpoints.Events, tok)
		if err != nil {
			return err
		}
		defer ev.Close()
		m, err := ev.Next(ctx)
		if err != nil {
			return err
		}
		for _, p := range m.Participants {
			if p.ParticipantID == id && len(p.Tracks) > 0 {
				return nil
			}
		}
		return errors.New("the stage does not list the participant as publishing")
	}
}

// followStage runs Follow on its own goroutine until the returned stop.
func followStage(t *testing.T, env *stagetest.Env, st types.Stage, whip string, got *frames,
	rc client.Reconnect) (stop func() error) {
	t.Helper()
	tok := env.Token(t, *st.Arn, "worker", nil, types.ParticipantTokenCapabilitySubscribe)
	ctx, cancel := context.WithCancel(env.Ctx)
	done := make(chan error, 1)
	go func() {
		done <- client.Follow(ctx, *st.Endpoints.Events, whip, *tok.Token, client.FollowOptions{
			Options: loopback, OnParticipants: got.onParticipants, OnTrack: got.onTrack(t), Reconnect: rc})
	}()
	return func() error {
		cancel()
		return <-done
	}
}

// TestReconnectAfterNodeLoss: when the stage's node goes away (the stage
// server closed, its address refusing connections for a while) and
// another serves the stage at the same URLs, the publisher and the
// follower come back by themselves: the new server lists the participant
// as publishing, the follower decodes its video again, each reports its
// reconnection, and nothing is left running.
//
// "killed" plays a node killed without a word: the clients ignore the
// closed connections' DTLS goodbye, so only ICE silence tells them.
func TestReconnectAfterNodeLoss(t *testing.T) {
	check := testkit.CheckGoroutines(t, testkit.IdleHTTPConns)
	t.Run("closed", testNodeLoss)
	t.Run("killed", func(t *testing.T) {
		client.IgnoreDTLSClose(t)
		testNodeLoss(t)
	})
	check()
}

func testNodeLoss(t *testing.T) {
	t.Helper()
	{
		env := stagetest.Start(t, stagetest.Options{})
		st := env.CreateStage(t, "node-loss")
		tok := env.Token(t, *st.Arn, "ann", nil)
		id := *tok.ParticipantId
		var pubRC, followRC reconnects
		leave := env.PublishSynth(t, st, tok, synth.Config{Width: 320, Height: 180, Label: "ann"},
			client.PublishOptions{Reconnect: client.Reconnect{OnReconnect: pubRC.on}})
		got := &frames{n: map[string]int{}}
		stop := followStage(t, env, st, *st.Endpoints.Whip, got, client.Reconnect{OnReconnect: followRC.on})
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond,
			testkit.Until("frames of ann", func() bool { return got.count(id) > 15 }))

		env.RestartStage(t, 500*time.Millisecond)
		restarted := time.Now()
		before := got.count(id)
		watcher := env.Token(t, *st.Arn, "watcher", nil, types.ParticipantTokenCapabilitySubscribe)
		testkit.WaitFor(t, 30*time.Second, 100*time.Millisecond, publishing(env, st, *watcher.Token, id))
		published := time.Since(restarted)
		testkit.WaitFor(t, 30*time.Second, 50*time.Millisecond,
			testkit.Until("frames of ann after the restart", func() bool { return got.count(id) > before+15 }))
		decoded := time.Since(restarted)
		if pubRC.count() < 1 || followRC.count() < 1 {
			t.Fatalf("reconnections reported: publisher %d, follower %d; want at least 1 each",
				pubRC.count(), followRC.count())
		}
		pa, pt := pubRC.last()
		fa, ft := followRC.last()
		t.Logf("publisher back in %v (%d attempts), listed %v after the restart; follower's events back in %v "+
			"(%d attempts); frames decoded again %v after the restart", pt.Round(time.Millisecond), pa,
			published.Round(time.Millisecond), ft.Round(time.Millisecond), fa, decoded.Round(time.Millisecond))
		if set := got.lastSet(); len(set) != 1 || set[0] != "ann" {
			t.Errorf("participants after the restart = %v, want [ann]", set)
		}
		if err := stop(); err != nil {
			t.Errorf("Follow = %v", err)
		}
		leave()
	}
}

// TestReconnectGivesUp: a stage that stays out of reach longer than
// Reconnect.Within ends the publication with an error (Done, Err) and
// Follow with one.
func TestReconnectGivesUp(t *testing.T) {
	check := testkit.CheckGoroutines(t, testkit.IdleHTTPConns)
	t.Run("stage", func(t *testing.T) {
		env := stagetest.Start(t, stagetest.Options{})
		st := env.CreateStage(t, "gone")
		tok := env.Token(t, *st.Arn, "ann", nil)
		within := client.Reconnect{Within: 1500 * time.Millisecond}
		p, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token,
			client.PublishOptions{Options: loopback, NoAudio: true, Reconnect: within})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(context.Background())
		ftok := env.Token(t, *st.Arn, "worker", nil, types.ParticipantTokenCapabilitySubscribe)
		followed := make(chan error, 1)
		go func() {
			followed <- client.Follow(env.Ctx, *st.Endpoints.Events, *st.Endpoints.Whip, *ftok.Token,
				client.FollowOptions{Options: loopback, Reconnect: within})
		}()
		var gaveUp atomic.Int64
		lost := time.Now()
		go func() {
			<-p.Done()
			gaveUp.Store(int64(time.Since(lost)))
		}()
		// Back after 4 s: a client still trying would reconnect, and the
		// waits below fail.
		env.RestartStage(t, 4*time.Second)
		select {
		case <-p.Done():
		case <-time.After(15 * time.Second):
			t.Fatal("the publisher is still on, though the outage lasted longer than it may wait")
		}
		if err := p.Err(); err == nil || !strings.Contains(err.Error(), "reconnect to") {
			t.Errorf("Err() = %v, want the reconnection's failure", err)
		}
		t.Logf("publisher gave up %v after the node went away (Within counts from when it noticed): %v",
			time.Duration(gaveUp.Load()).Round(time.Millisecond), p.Err())
		select {
		case err := <-followed:
			if err == nil || !strings.Contains(err.Error(), "not reconnected within") {
				t.Errorf("Follow = %v, want it to give up", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Follow still runs, though the outage lasted longer than it may wait")
		}
	})
	check()
}

// TestPublishThroughRedirect: WHIP and WHEP offers answered 307 by a node
// that does not host the stage reach the one that does, on another host
// name, with the token; the session is DELETEd where it lives.
func TestPublishThroughRedirect(t *testing.T) {
	check := testkit.CheckGoroutines(t, testkit.IdleHTTPConns)
	t.Run("stage", func(t *testing.T) {
		env := stagetest.Start(t, stagetest.Options{})
		st := env.CreateStage(t, "redirect")
		// The stage's node by another name: Go drops Authorization on a
		// redirect to another host unless the client keeps it.
		target := strings.Replace(env.StageURL, "127.0.0.1", "localhost", 1)
		var redirected, misplaced atomic.Int32
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && (r.URL.Path == "/whip" || strings.HasPrefix(r.URL.Path, "/whep/")) {
				redirected.Add(1)
				http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
			misplaced.Add(1)
			http.NotFound(w, r)
		}))
		defer front.Close()
		watcher := env.Token(t, *st.Arn, "watcher", nil, types.ParticipantTokenCapabilitySubscribe)
		ev, err := client.DialEvents(env.Ctx, *st.Endpoints.Events, *watcher.Token)
		if err != nil {
			t.Fatal(err)
		}
		defer ev.Close()
		tok := env.Token(t, *st.Arn, "ann", nil)
		src, err := synth.New(synth.Config{Width: 320, Height: 180, Label: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		p, err := client.Publish(env.Ctx, front.URL+"/whip", *tok.Token, client.PublishOptions{Options: loopback,
			OnKeyframeRequest: src.RequestKeyframe})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(env.Ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = src.Run(ctx, p.Video, p.Audio) })
		got := &frames{n: map[string]int{}}
		stop := followStage(t, env, st, front.URL+"/whip", got, client.Reconnect{})
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond,
			testkit.Until("frames through the redirect", func() bool { return got.count(*tok.ParticipantId) > 15 }))
		if err := stop(); err != nil {
			t.Errorf("Follow = %v", err)
		}
		cancel()
		wg.Wait()
		if err := p.Close(env.Ctx); err != nil {
			t.Errorf("Close = %v", err)
		}
		if n := redirected.Load(); n < 2 {
			t.Errorf("%d offers redirected, want the WHIP and a WHEP one", n)
		}
		if n := misplaced.Load(); n != 0 {
			t.Errorf("%d requests (DELETEs) went to the redirecting node", n)
		}
		waitLeft(t, ev, *tok.ParticipantId, "left (DELETE)")
	})
	check()
}

// waitLeft reads the events channel until participant id leaves, and
// checks why.
func waitLeft(t *testing.T, ev *client.Events, id, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		m, err := ev.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s to leave: %v", id, err)
		}
		if m.Type == stage.MsgParticipantLeft && m.Participant.ParticipantID == id {
			if m.Reason != reason {
				t.Errorf("left with reason %q, want %q", m.Reason, reason)
			}
			return
		}
	}
}

// TestFollowReconnectMessage: a node that says it is leaving (a reconnect
// message, then status 1012) is left at once for a new connection, whose
// snapshot Follow takes up.
func TestFollowReconnectMessage(t *testing.T) {
	var dials atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := conn.CloseRead(r.Context())
		_ = wsjson.Write(ctx, conn, stage.Message{Type: stage.MsgSnapshot, Participants: []stage.ParticipantInfo{}})
		if dials.Add(1) == 1 {
			_ = wsjson.Write(ctx, conn, stage.Message{Type: stage.MsgReconnect, Reason: "draining"})
			conn.Close(websocket.StatusServiceRestart, "draining")
			return
		}
		<-ctx.Done()
	}))
	defer srv.Close()
	var rc reconnects
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- client.Follow(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/events", srv.URL+"/whip", "tok",
			client.FollowOptions{Reconnect: client.Reconnect{OnReconnect: rc.on}})
	}()
	testkit.WaitFor(t, 10*time.Second, 20*time.Millisecond,
		testkit.Until("a reconnection after the reconnect message", func() bool { return rc.count() == 1 }))
	if n := dials.Load(); n != 2 {
		t.Errorf("%d connections to the events channel, want 2", n)
	}
	_, took := rc.last()
	t.Logf("events channel back %v after the reconnect message", took.Round(time.Millisecond))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Follow = %v", err)
	}
}

// TestPublisherMovesWhenAsked: Reconnect (what an owner does on a
// reconnect message) makes a new connection while the old one still
// publishes; the stage, which holds the old one, answers 409, which the
// Publisher clears by DELETEing it. Subscribers get the new one.
func TestPublisherMovesWhenAsked(t *testing.T) {
	check := testkit.CheckGoroutines(t, testkit.IdleHTTPConns)
	t.Run("stage", func(t *testing.T) {
		env := stagetest.Start(t, stagetest.Options{})
		st := env.CreateStage(t, "asked")
		tok := env.Token(t, *st.Arn, "ann", nil)
		src, err := synth.New(synth.Config{Width: 320, Height: 180, Label: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		var rc reconnects
		p, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{Options: loopback,
			OnKeyframeRequest: src.RequestKeyframe, Reconnect: client.Reconnect{OnReconnect: rc.on}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(env.Ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = src.Run(ctx, p.Video, p.Audio) })
		got := &frames{n: map[string]int{}}
		stop := followStage(t, env, st, *st.Endpoints.Whip, got, client.Reconnect{})
		id := *tok.ParticipantId
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond,
			testkit.Until("frames of ann", func() bool { return got.count(id) > 15 }))
		p.Reconnect()
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond,
			testkit.Until("the move", func() bool { return p.Reconnects() == 1 }))
		before := got.count(id)
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond,
			testkit.Until("frames of the new connection", func() bool { return got.count(id) > before+15 }))
		attempts, took := rc.last()
		t.Logf("moved in %v (%d attempts: the 409 cleared by a DELETE)", took.Round(time.Millisecond), attempts)
		if attempts != 2 {
			t.Errorf("%d attempts, want 2 (409, then the offer after the DELETE)", attempts)
		}
		if err := stop(); err != nil {
			t.Errorf("Follow = %v", err)
		}
		cancel()
		wg.Wait()
		if err := p.Close(env.Ctx); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	check()
}
