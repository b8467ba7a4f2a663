//go:build faults

package fleettest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// TestStageCascade runs a stage cluster of three `stagehand serve` nodes
// behind one balancer, two `stagehand publish` participants on the stage's
// origin, and six viewers (this test, following the stage as a composition
// does) that reach the nodes through the balancer. Every node serves some of
// them, the others relaying from the origin; every viewer decodes every
// publisher with under 1 % of frames lost; every node's events channel lists
// the same participants. Then the origin is killed: the stage is hosted
// again, the remaining edge follows it, and every viewer decodes every
// publisher again. Then the last edge is killed: its viewers are served by
// the origin within 5 s.
func TestStageCascade(t *testing.T) {
	f := startFleet(t, fleetSpec{stageNodes: 3})
	var fig figures
	defer fig.print(t)
	ctx := context.Background()
	out, err := f.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("cascade")})
	if err != nil {
		t.Fatal(err)
	}
	s := &stageUnderTest{arn: out.Stage.Arn, id: stageIDOf(*out.Stage.Arn)}
	f.publish(s.arn, "cast-1", "tomato")
	f.publish(s.arn, "cast-2", "teal")
	s.waitBack(t, f, "", 30*time.Second)
	origin := f.hostOf(s.id)

	v := &viewers{pairs: map[string]*pairStats{}}
	for i := range 6 {
		v.follow(t, f, out.Stage, i)
	}
	v.waitFlowing(t, 12, 30*time.Second)
	// The nodes announce their load every second: wait for the figures
	// that count every viewer's subscriptions.
	var nodes []stage.NodeStatus
	var served []string
	testkit.WaitFor(t, 10*time.Second, 250*time.Millisecond, func() error {
		nodes, served = f.stageNodes(t), nil
		total := 0
		for _, n := range nodes {
			subscriptions := n.Peers
			if n.ID == origin {
				subscriptions -= 2 + 2*(len(nodes)-1) // its publishers, and each edge's relay of each
			}
			total += subscriptions
			served = append(served, fmt.Sprint(subscriptions))
		}
		if len(nodes) != 3 || total != 12 || slices.Contains(served, "0") {
			return fmt.Errorf("the nodes serve %v of the 12 viewer subscriptions; want some on each of 3: %+v",
				served, nodes)
		}
		return nil
	})
	fig.add("cascade: viewers' subscriptions (12) per node: %s", strings.Join(served, ", "))
	loss := v.lossOver(t, 6*time.Second)
	fig.add("cascade: frames lost over 6 s, worst viewer and publisher: %.2f %%", 100*loss)
	if loss > 0.01 {
		t.Errorf("a viewer lost %.2f %% of a publisher's frames; want under 1 %%", 100*loss)
	}
	f.checkOneParticipantList(t, out.Stage, nodes, 8)

	// The origin goes: the stage is hosted again, the edges follow.
	start := time.Now()
	f.serves[nodePID(origin)].Kill()
	rehost := f.waitRehosted(t, s.id, origin, 20*time.Second)
	back := v.waitResumed(t, start, 30*time.Second)
	fig.add("origin SIGKILL: stage re-hosted %s after it, every viewer decoding every publisher again %s after it",
		rehost.Round(10*time.Millisecond), back.Round(10*time.Millisecond))

	// The last edge goes: its viewers are served by the origin.
	origin = f.hostOf(s.id)
	var edge string
	for _, n := range f.stageNodes(t) {
		if n.ID != origin {
			edge = n.ID
		}
	}
	if edge == "" {
		t.Fatal("no edge node is left")
	}
	start = time.Now()
	f.serves[nodePID(edge)].Kill()
	back = v.waitResumed(t, start, 15*time.Second)
	fig.add("edge SIGKILL: every viewer decoding every publisher again %s after it", back.Round(10*time.Millisecond))
	if back > 5*time.Second {
		t.Errorf("the edge's viewers took %s to be served elsewhere; want under 5 s", back)
	}
}

func stageIDOf(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// viewers are the test's subscribers; pairs are by viewer and publisher.
type viewers struct {
	mu    sync.Mutex
	pairs map[string]*pairStats
}

// pairStats is what one viewer decoded of one publisher.
type pairStats struct {
	frames    int
	first     uint32 // RTP timestamps of the first and last frame counted
	last      uint32
	lastAt    time.Time // when the last frame was decoded
	resumedAt time.Time // when a frame came after a silence of over 500 ms
	counting  bool
}

// follow makes viewer i follow the stage through the balancer, decoding
// every publisher's video.
func (v *viewers) follow(t *testing.T, f *fleet, st *types.Stage, i int) {
	t.Helper()
	tok, err := f.api.CreateParticipantToken(context.Background(), &ivsrealtime.CreateParticipantTokenInput{
		StageArn: st.Arn, UserId: aws.String(fmt.Sprintf("viewer-%d", i)),
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = client.Follow(ctx, *st.Endpoints.Events, *st.Endpoints.Whip, *tok.ParticipantToken.Token,
			client.FollowOptions{Options: client.Options{ICEIPs: []string{"127.0.0.1"}},
				OnTrack: func(id string, tr *webrtc.TrackRemote, sub *client.Subscription) {
					key := fmt.Sprintf("viewer-%d<-%s", i, id)
					stagetest.DecodeTrack(t, tr, func(_ *astiav.Frame, ts uint32) { v.frame(key, ts) }, nil,
						func() { _ = sub.RequestKeyframe(tr) })
				}})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (v *viewers) frame(key string, ts uint32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pairs[key]
	if p == nil {
		p = &pairStats{}
		v.pairs[key] = p
	}
	now := time.Now()
	if !p.lastAt.IsZero() && now.Sub(p.lastAt) > 500*time.Millisecond {
		p.resumedAt = now
	}
	p.lastAt = now
	if !p.counting {
		return
	}
	if p.frames == 0 {
		p.first = ts
	}
	p.frames++
	p.last = ts
}

// waitFlowing waits until n pairs decode frames.
func (v *viewers) waitFlowing(t *testing.T, n int, within time.Duration) {
	t.Helper()
	testkit.WaitFor(t, within, 100*time.Millisecond, func() error {
		if got := v.flowing(time.Now().Add(-time.Second)); got < n {
			return fmt.Errorf("%d of %d viewer-publisher pairs decode frames", got, n)
		}
		return nil
	})
}

// flowing counts the pairs that decoded a frame since.
func (v *viewers) flowing(since time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, p := range v.pairs {
		if p.lastAt.After(since) {
			n++
		}
	}
	return n
}

// lossOver counts frames for d and returns the worst pair's loss: the
// frames its RTP timestamps span (30 fps) that it did not decode.
func (v *viewers) lossOver(t *testing.T, d time.Duration) float64 {
	t.Helper()
	v.mu.Lock()
	for _, p := range v.pairs {
		p.counting, p.frames = true, 0
	}
	v.mu.Unlock()
	time.Sleep(d) // the measuring window itself, not a wait for a condition
	v.mu.Lock()
	defer v.mu.Unlock()
	worst := 0.0
	for key, p := range v.pairs {
		p.counting = false
		want := float64(p.last-p.first)/3000 + 1
		if p.frames < 2 || want < float64(d/time.Second)*25 {
			t.Errorf("%s decoded %d frames spanning %.0f in %s", key, p.frames, want, d)
			continue
		}
		worst = max(worst, 1-float64(p.frames)/want)
	}
	return worst
}

// waitResumed waits until every pair decodes frames again after a fault
// at start, and returns how long after start the last one did.
func (v *viewers) waitResumed(t *testing.T, start time.Time, within time.Duration) time.Duration {
	t.Helper()
	n := len(v.pairs)
	testkit.WaitFor(t, within, 50*time.Millisecond, func() error {
		// Pairs the fault cut decode again once each had a frame after a
		// gap; the others never stopped. Every pair must be flowing, and
		// have been for a moment longer than a lost connection goes unseen.
		if time.Since(start) < 2*time.Second {
			return fmt.Errorf("too early to tell")
		}
		if got := v.flowing(time.Now().Add(-200 * time.Millisecond)); got < n {
			return fmt.Errorf("%d of %d viewer-publisher pairs decode frames", got, n)
		}
		return nil
	})
	return v.resumedAt(start).Sub(start)
}

// resumedAt is when the pair that resumed last after start had its first
// frame after a silence (start when none was cut).
func (v *viewers) resumedAt(start time.Time) time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	latest := start
	for _, p := range v.pairs {
		if p.resumedAt.After(latest) {
			latest = p.resumedAt
		}
	}
	return latest
}

// stageNodes lists the live stage nodes as they announce themselves.
func (f *fleet) stageNodes(t *testing.T) []stage.NodeStatus {
	t.Helper()
	kv, err := f.js.KeyValue(context.Background(), "stagehand_stage_nodes")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []stage.NodeStatus
	for _, k := range keys {
		e, err := kv.Get(context.Background(), k)
		if err != nil {
			continue
		}
		var n stage.NodeStatus
		if json.Unmarshal(e.Value(), &n) == nil && time.Since(n.At) < 3*time.Second {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b stage.NodeStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// checkOneParticipantList opens the events channel on each node and checks
// that each lists the same want participants.
func (f *fleet) checkOneParticipantList(t *testing.T, st *types.Stage, nodes []stage.NodeStatus, want int) {
	t.Helper()
	tok, err := f.api.CreateParticipantToken(context.Background(), &ivsrealtime.CreateParticipantTokenInput{
		StageArn: st.Arn, UserId: aws.String("auditor"),
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
	if err != nil {
		t.Fatal(err)
	}
	var lists []string
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ev, err := client.DialEvents(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+"/events",
			*tok.ParticipantToken.Token)
		if err != nil {
			cancel()
			t.Fatalf("events on %s: %v", n.URL, err)
		}
		m, err := ev.Next(ctx)
		_ = ev.Close()
		cancel()
		if err != nil || m.Type != stage.MsgSnapshot {
			t.Fatalf("events on %s: first message %+v, %v; want a snapshot", n.URL, m, err)
		}
		var users []string
		for _, p := range m.Participants {
			users = append(users, p.UserID)
		}
		slices.Sort(users)
		if len(users) != want {
			t.Errorf("the events channel on %s lists %d participants %v; want %d", n.URL, len(users), users, want)
		}
		lists = append(lists, strings.Join(users, ","))
	}
	if len(slices.Compact(slices.Clone(lists))) != 1 {
		t.Errorf("the nodes' events channels list different participants: %q", lists)
	}
}
