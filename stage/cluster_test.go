package stage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
)

const leaseTTL = 2 * time.Second

// cluster starts a stage cluster of two nodes on one store: a (the Env's
// stage server) and b.
func cluster(t *testing.T) (*stagetest.Env, *stagetest.Node) {
	t.Helper()
	env := stagetest.Start(t, stagetest.Options{Cluster: &stage.ClusterConfig{LeaseTTL: leaseTTL}})
	return env, env.AddNode(t, stage.ClusterConfig{LeaseTTL: leaseTTL})
}

// onNode is st as reached through the node at base.
func onNode(st types.Stage, base string) types.Stage {
	whip, events := base+"/whip", "ws"+strings.TrimPrefix(base, "http")+"/events"
	st.Endpoints = &types.StageEndpoints{Whip: &whip, Events: &events}
	return st
}

// publishOn publishes as tok's participant through the node at base, until
// the test ends.
func publishOn(t *testing.T, env *stagetest.Env, tok types.ParticipantToken, base string) *client.Publisher {
	t.Helper()
	p, err := client.Publish(env.Ctx, base+"/whip", *tok.Token, client.PublishOptions{Options: loopback})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// told reports whether the watcher learned that user is on the stage: from
// a participant-joined message, or from a snapshot that lists them.
func (w *watch) told(user string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		if m.Type == stage.MsgParticipantJoined && m.Participant.UserID == user {
			return true
		}
		if m.Type == stage.MsgSnapshot && slices.ContainsFunc(m.Participants,
			func(p stage.ParticipantInfo) bool { return p.UserID == user }) {
			return true
		}
	}
	return false
}

func stageID(st types.Stage) string { return (*st.Arn)[strings.LastIndex(*st.Arn, "/")+1:] }

func hosts(s *stage.Server, st types.Stage) bool {
	return slices.Contains(s.ActiveStages(), stageID(st))
}

// TestClusterPlacementAndRedirects: a stage is placed on the node its first
// publisher reaches (the nodes are equally loaded); publishers and
// subscribers that reach the other node are redirected (307) to it, and
// that node's events socket tells what happens on the host.
func TestClusterPlacementAndRedirects(t *testing.T) {
	env, b := cluster(t)
	st := env.CreateStage(t, "spread")
	viaA, viaB := onNode(st, env.StageURL), onNode(st, b.URL)
	w := watchEvents(t, env, viaA) // nobody hosts the stage yet: a follows it on NATS

	alice, _ := publish(t, env, viaB, "alice")
	if !hosts(b.Server, st) || hosts(env.Stage, st) {
		t.Fatalf("the stage is on a: %v, on b: %v; want b only", hosts(env.Stage, st), hosts(b.Server, st))
	}
	bob, _ := publish(t, env, viaA, "bob") // 307 to b
	if !hosts(b.Server, st) || hosts(env.Stage, st) {
		t.Fatal("bob's publish through a did not reach b")
	}
	_, got := subscribe(t, env, viaA, findUser(t, env, st, activeSession(t, env, st), "alice"))
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if got.count("video") < 10 {
			return fmt.Errorf("the subscriber redirected to b got %d video packets", got.count("video"))
		}
		return nil
	})
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, user := range []string{"alice", "bob"} {
			if !w.told(user) {
				return fmt.Errorf("a's events socket has not told that %s joined: %v", user, w.seen())
			}
		}
		return nil
	})
	// The session URL is the host's: DELETE reaches it.
	if err := bob.Close(env.Ctx); err != nil {
		t.Errorf("bob leaves through the session URL of b: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if !w.has("participant-left bob") {
			return fmt.Errorf("bob's leaving not told on a: %v", w.seen())
		}
		return nil
	})
	_ = alice
}

// TestClusterFailover: the node hosting a stage goes; its publisher
// reconnects by itself through the cluster's address (here the surviving
// node's), which places the stage there once the lost node's lease lapsed;
// the session the lost node left open is ended (LEFT recorded), and the
// events socket on the surviving node tells the new state.
func TestClusterFailover(t *testing.T) {
	env, b := cluster(t)
	st := env.CreateStage(t, "failover")
	w := watchEvents(t, env, onNode(st, env.StageURL))
	// The publisher reaches the stage through a, which redirects it to b.
	tok := env.Token(t, *st.Arn, "carol", nil)
	placed := publishOn(t, env, tok, b.URL)
	placed.Close(env.Ctx)
	p := publishOn(t, env, tok, env.StageURL)
	if !hosts(b.Server, st) {
		t.Fatal("the stage is not on b")
	}
	session := activeSession(t, env, st)
	b.Close()

	start := time.Now()
	testkit.WaitFor(t, 3*leaseTTL+5*time.Second, 50*time.Millisecond, func() error {
		if !hosts(env.Stage, st) || p.Reconnects() == 0 {
			return fmt.Errorf("carol reconnected %d times; stage on a: %v", p.Reconnects(), hosts(env.Stage, st))
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("re-hosted on the surviving node %s after the host closed (lease TTL %s)", took.Round(10*time.Millisecond),
		leaseTTL)
	if took > leaseTTL+3*time.Second {
		t.Errorf("re-hosting took %s; want about the lease TTL %s", took, leaseTTL)
	}
	if !hosts(env.Stage, st) {
		t.Fatal("the surviving node does not host the stage")
	}
	if ev := events(t, env, st, session, *tok.ParticipantId); len(ev) == 0 || ev[len(ev)-1] != "LEFT" {
		t.Errorf("the lost node's session: carol's events %v; want LEFT last", ev)
	}
	if now := activeSession(t, env, st); now == "" || now == session {
		t.Errorf("active session %q after the move; want a new one (was %q)", now, session)
	}
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		seen := w.seen()
		joined := 0
		for _, s := range seen {
			if s == "participant-joined carol" {
				joined++
			}
		}
		if joined < 3 { // placed on b, through a, and back after the move
			return fmt.Errorf("carol joined %d times on a's events socket, want 3: %v", joined, seen)
		}
		return nil
	})
}

// TestClusterDrain: a draining node releases its stages and tells its
// watchers to reconnect (a reconnect message, then status 1012); its
// publisher reconnects by itself through the drained node, which redirects
// it to the other node.
func TestClusterDrain(t *testing.T) {
	env, b := cluster(t)
	st := env.CreateStage(t, "drain")
	viaB := onNode(st, b.URL)
	p, _ := publish(t, env, viaB, "dave")
	if !hosts(b.Server, st) {
		t.Fatal("the stage is not on b")
	}
	wtok := env.Token(t, *st.Arn, "watcher", nil, types.ParticipantTokenCapabilitySubscribe)
	conn, _, err := websocket.Dial(env.Ctx, *viaB.Endpoints.Events+"?access_token="+*wtok.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.CloseNow() }()
	readType := func() (stage.MessageType, error) {
		_, b, err := conn.Read(env.Ctx)
		if err != nil {
			return "", err
		}
		var m stage.Message
		return m.Type, json.Unmarshal(b, &m)
	}
	if typ, err := readType(); err != nil || typ != stage.MsgSnapshot {
		t.Fatalf("first message %q, %v; want a snapshot", typ, err)
	}
	b.Server.Drain(env.Ctx)
	if hosts(b.Server, st) {
		t.Error("b still hosts the stage after Drain")
	}
	var typ stage.MessageType
	for err == nil && typ != stage.MsgReconnect {
		typ, err = readType()
	}
	if typ != stage.MsgReconnect {
		t.Errorf("the watcher got no reconnect message: %v", err)
	}
	if _, err := readType(); websocket.CloseStatus(err) != websocket.StatusServiceRestart {
		t.Errorf("the events socket closed with %v; want 1012 (service restart)", err)
	}
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if !hosts(env.Stage, st) || hosts(b.Server, st) || p.Reconnects() == 0 {
			return fmt.Errorf("on a: %v, on b: %v, dave's reconnects: %d", hosts(env.Stage, st), hosts(b.Server, st),
				p.Reconnects())
		}
		return nil
	})
}

// TestClusterLeaseLost: a node that finds its lease taken (a partition that
// healed after another node took the stage) stops serving the stage at once;
// its publisher reconnects by itself once that lease lapsed.
func TestClusterLeaseLost(t *testing.T) {
	env, b := cluster(t)
	st := env.CreateStage(t, "stolen")
	p, _ := publish(t, env, onNode(st, b.URL), "erin")
	js, _ := jetstream.New(env.NC)
	kv, err := js.KeyValue(env.Ctx, "stagehand_stage_leases")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(env.Ctx, stageID(st), []byte(`{"node":"elsewhere","url":"http://127.0.0.1:9"}`)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, leaseTTL+3*time.Second, 20*time.Millisecond, func() error {
		if hosts(b.Server, st) {
			return errors.New("b still serves the stage after its lease was taken")
		}
		return nil
	})
	testkit.WaitFor(t, 3*leaseTTL+5*time.Second, 50*time.Millisecond, func() error {
		if p.Reconnects() == 0 || !(hosts(b.Server, st) || hosts(env.Stage, st)) {
			return fmt.Errorf("erin's reconnects: %d; hosted on a: %v, b: %v", p.Reconnects(), hosts(env.Stage, st),
				hosts(b.Server, st))
		}
		return nil
	})
}

// TestClusterDisconnectAndDelete: DisconnectParticipant and DeleteStage
// reach the node that hosts the participant, whichever node the API runs
// beside; the disconnected participant cannot come back through any node.
func TestClusterDisconnectAndDelete(t *testing.T) {
	env, b := cluster(t)
	st := env.CreateStage(t, "reach")
	viaB := onNode(st, b.URL)
	troll, tok := publish(t, env, viaB, "troll")
	keeper, _ := publish(t, env, viaB, "keeper")
	if !hosts(b.Server, st) {
		t.Fatal("the stage is not on b")
	}
	if _, err := env.API.DisconnectParticipant(env.Ctx, &ivsrealtime.DisconnectParticipantInput{
		StageArn: st.Arn, ParticipantId: tok.ParticipantId, Reason: aws.String("spam")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-troll.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the disconnected publisher on b is still connected")
	}
	for _, base := range []string{env.StageURL, b.URL} {
		_, err := client.Publish(env.Ctx, base+"/whip", *tok.Token, client.PublishOptions{Options: loopback})
		var se *client.StatusError
		if !errors.As(err, &se) || se.Status != 403 {
			t.Errorf("rejoin through %s with a revoked token: %v, want 403", base, err)
		}
	}
	if _, err := env.API.DeleteStage(env.Ctx, &ivsrealtime.DeleteStageInput{Arn: st.Arn}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-keeper.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher on b is still connected after DeleteStage")
	}
}

// TestClusterNodes: each node lists the cluster's nodes with their load,
// its own entry current; a closed node falls silent.
func TestClusterNodes(t *testing.T) {
	env, b := cluster(t)
	st := env.CreateStage(t, "nodes")
	publish(t, env, onNode(st, b.URL), "alice")
	testkit.WaitFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		nodes, err := env.Stage.Nodes(env.Ctx)
		if err != nil {
			return err
		}
		if len(nodes) != 2 || nodes[0].URL != env.StageURL || nodes[0].Stages != 0 {
			return fmt.Errorf("a lists %+v; want itself first with no stage, then b", nodes)
		}
		if n := nodes[1]; n.URL != b.URL || n.Stages != 1 || n.Participants != 1 || n.Silent {
			return fmt.Errorf("a lists b as %+v; want one stage and one participant", n)
		}
		return nil
	})
	b.Close()
	testkit.WaitFor(t, 15*time.Second, 200*time.Millisecond, func() error {
		nodes, err := env.Stage.Nodes(env.Ctx)
		if err != nil {
			return err
		}
		if len(nodes) == 2 && !nodes[1].Silent {
			return fmt.Errorf("b still announced as alive: %+v", nodes[1])
		}
		return nil
	})
}
