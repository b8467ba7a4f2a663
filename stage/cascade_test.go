package stage_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-rt/stagehand/internal/promtest"
	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// openPCs is the number of peer connections a node has open.
func openPCs(s *stage.Server) int64 {
	_, open := s.PeerConnections()
	return open
}

// waitPackets waits until each subscriber received video from its
// publisher (the payloads name who sent them).
func waitPackets(t *testing.T, subs map[string]*received) {
	t.Helper()
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		for who, got := range subs {
			got.mu.Lock()
			ok := got.senders[who]
			got.mu.Unlock()
			if !ok || got.count("video") < 20 || got.count("audio") < 20 {
				return fmt.Errorf("a subscriber to %s has %d video and %d audio packets (from %s: %v)", who,
					got.count("video"), got.count("audio"), who, ok)
			}
		}
		return nil
	})
}

// connectedViewers lists the participants of the session that only
// subscribe and are connected, as the API reports them.
func connectedViewers(t *testing.T, env *stagetest.Env, st types.Stage, session string) int {
	t.Helper()
	out, err := env.API.ListParticipants(env.Ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn,
		SessionId: aws.String(session), FilterByState: types.ParticipantStateConnected})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range out.Participants {
		if aws.ToString(p.UserId) == "viewer" {
			n++
		}
	}
	return n
}

// TestCascade: with a stage hosted on a, subscribers reaching b and c are
// served there, from one relay per publisher and node; the origin's peer
// connections grow with the relaying nodes, not with the subscribers; the
// API and every node's events channel list the edges' subscribers; a
// subscriber leaving is recorded, an idle relay ends, and a publisher
// leaving ends its subscribers on the edges.
func TestCascade(t *testing.T) {
	env, b := cluster(t)
	c := env.AddNode(t, stage.ClusterConfig{LeaseTTL: leaseTTL})
	st := env.CreateStage(t, "cascade")
	viaA, viaB, viaC := onNode(st, env.StageURL), onNode(st, b.URL), onNode(st, c.URL)
	_, _ = publish(t, env, viaA, "alice")
	bob, _ := publish(t, env, viaA, "bob")
	if !hosts(env.Stage, st) {
		t.Fatal("the stage is not on a, where its publishers came")
	}
	session := activeSession(t, env, st)
	alice, bobID := findUser(t, env, st, session, "alice"), findUser(t, env, st, session, "bob")
	w := watchEvents(t, env, viaC)

	onB1, gotB1, viewer := subscribeAs(t, env, viaB, alice)
	_, gotB2 := subscribe(t, env, viaB, bobID)
	_, gotC := subscribe(t, env, viaC, alice)
	waitPackets(t, map[string]*received{"alice": gotB1, "bob": gotB2})
	waitPackets(t, map[string]*received{"alice": gotC})
	if hosts(b.Server, st) || hosts(c.Server, st) {
		t.Fatal("b or c hosts the stage too")
	}
	// a: 2 publishers and 3 relays (b: alice, bob; c: alice).
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		if got := openPCs(env.Stage); got != 5 {
			return fmt.Errorf("the origin has %d peer connections; want 5 (2 publishers, 3 relays)", got)
		}
		return nil
	})
	// More subscribers on b cost the origin nothing.
	for range 3 {
		_, got := subscribe(t, env, viaB, alice)
		waitPackets(t, map[string]*received{"alice": got})
	}
	if got := openPCs(env.Stage); got != 5 {
		t.Errorf("with 4 subscribers to alice on b the origin has %d peer connections; want still 5", got)
	}
	if got := openPCs(b.Server); got != 2+5 {
		t.Errorf("b has %d peer connections; want 7 (2 relays, 5 subscribers)", got)
	}
	for _, m := range []struct {
		node *stage.Server
		kind string
		want float64
	}{{b.Server, "relays", 2}, {b.Server, "edge_stages", 1}, {c.Server, "relays", 1},
		{env.Stage, "remote_subscribers", 6}, {env.Stage, "relays", 0}} {
		got := promtest.Value(t, []prometheus.Collector{m.node.Collector()}, "stagehand_stage_cascade", "kind", m.kind)
		if got != m.want {
			t.Errorf("stagehand_stage_cascade{kind=%q} = %v; want %v", m.kind, got, m.want)
		}
	}
	// One participant list: the API and c's events channel know all 6 viewers.
	testkit.WaitFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if n := connectedViewers(t, env, st, session); n != 6 {
			return fmt.Errorf("the API lists %d connected viewers; want 6", n)
		}
		joined := 0
		for _, e := range w.seen() {
			if e == "participant-joined viewer" {
				joined++
			}
		}
		if joined != 6 {
			return fmt.Errorf("c's events channel told %d viewers joining; want 6: %v", joined, w.seen())
		}
		return nil
	})
	testkit.WaitFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if evs := events(t, env, st, session, viewer); !slices.Contains(evs, "SUBSCRIBE_STARTED<-"+alice) {
			return fmt.Errorf("the viewer's events are %v; want SUBSCRIBE_STARTED", evs)
		}
		return nil
	})
	if err := onB1.Close(env.Ctx); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if evs := events(t, env, st, session, viewer); !slices.Contains(evs, "LEFT") {
			return fmt.Errorf("after it left b, the viewer's events are %v; want LEFT", evs)
		}
		return nil
	})
	// bob leaves: his subscriber on b is ended, and b's relay of him too.
	if err := bob.Close(env.Ctx); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if got := openPCs(env.Stage); got != 3 {
			return fmt.Errorf("after bob left the origin has %d peer connections; want 3", got)
		}
		if got := openPCs(b.Server); got != 1+3 {
			return fmt.Errorf("after bob left b has %d peer connections; want 4 (alice's relay, 3 subscribers)", got)
		}
		return nil
	})
}

// subscribeAs subscribes like subscribe, and returns the viewer's
// participant id.
func subscribeAs(t *testing.T, env *stagetest.Env, st types.Stage, publisherID string) (*client.Subscription,
	*received, string) {
	t.Helper()
	tok := env.Token(t, *st.Arn, "viewer", nil, types.ParticipantTokenCapabilitySubscribe)
	r := &received{packets: map[string]int{}, senders: map[string]bool{}}
	s, err := client.Subscribe(env.Ctx, client.WHEPURL(*st.Endpoints.Whip, publisherID), *tok.Token, loopback, r.onTrack)
	if err != nil {
		t.Fatalf("subscribe to %s: %v", publisherID, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, r, aws.ToString(tok.ParticipantId)
}

// TestCascadeKeyframeRequests: keyframe requests from an edge's
// subscribers are aggregated there: bursts from three subscribers on b
// reach the publisher on a as one request.
func TestCascadeKeyframeRequests(t *testing.T) {
	env, b := cluster(t)
	st := env.CreateStage(t, "cascade-pli")
	tok := env.Token(t, *st.Arn, "pub", nil)
	var requests atomic.Int32
	p, err := client.Publish(env.Ctx, *onNode(st, env.StageURL).Endpoints.Whip, *tok.Token,
		client.PublishOptions{Options: loopback, OnKeyframeRequest: func() { requests.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(env.Ctx)
	defer cancel()
	go sendLoop(ctx, p, "pub")
	defer p.Close(context.Background())
	type viewer struct {
		sub   *client.Subscription
		video chan *webrtc.TrackRemote
	}
	var viewers []viewer
	for range 3 {
		v := viewer{video: make(chan *webrtc.TrackRemote, 1)}
		stok := env.Token(t, *st.Arn, "viewer", nil, types.ParticipantTokenCapabilitySubscribe)
		v.sub, err = client.Subscribe(env.Ctx, client.WHEPURL(b.URL+"/whip", *tok.ParticipantId), *stok.Token, loopback,
			func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				if tr.Kind() == webrtc.RTPCodecTypeVideo {
					v.video <- tr
				}
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
				}
			})
		if err != nil {
			t.Fatal(err)
		}
		defer v.sub.Close(context.Background())
		viewers = append(viewers, v)
	}
	tracks := make([]*webrtc.TrackRemote, len(viewers))
	for i, v := range viewers {
		tracks[i] = <-v.video
	}
	if got := openPCs(b.Server); got != 4 {
		t.Fatalf("b has %d peer connections; want 4 (a relay and 3 subscribers): not served there", got)
	}
	time.Sleep(500 * time.Millisecond) // past the 200 ms limits the joins' requests started
	before := requests.Load()
	for range 5 {
		for i, v := range viewers {
			if err := v.sub.RequestKeyframe(tracks[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("the edge's PLI at the publisher",
		func() bool { return requests.Load() > before }))
	time.Sleep(100 * time.Millisecond) // time for more requests, which must not come
	if got := requests.Load() - before; got != 1 {
		t.Errorf("bursts of 5 PLIs from 3 subscribers on an edge became %d keyframe requests, want 1", got)
	}
}
