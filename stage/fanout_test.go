package stage_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// TestFanoutToManySubscribers: more subscribers than the relay writes
// itself, so writer shards carry most of them; every subscriber receives
// the publisher's frames.
func TestFanoutToManySubscribers(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "fanout")
	_, tok := publish(t, env, st, "alice")
	const subscribers = 20
	var got []*received
	for range subscribers {
		_, r := subscribe(t, env, st, *tok.ParticipantId)
		got = append(got, r)
	}
	for i, r := range got {
		testkit.WaitFor(t, 30*time.Second, 50*time.Millisecond, testkit.Until(
			fmt.Sprintf("60 video packets at subscriber %d", i), func() bool { return r.count("video") >= 60 }))
		r.mu.Lock()
		from := r.senders["alice"]
		r.mu.Unlock()
		if !from {
			t.Errorf("subscriber %d received no frame marked by alice", i)
		}
	}
}

// seqLog records the video packets a subscriber receives, by sequence
// number.
type seqLog struct {
	mu       sync.Mutex
	payloads map[uint16][]byte
	times    map[uint16]int
	first    uint16
	track    *webrtc.TrackRemote
}

func (l *seqLog) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if t.Kind() != webrtc.RTPCodecTypeVideo {
		return
	}
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.track == nil {
			l.track, l.first = t, pkt.SequenceNumber
		}
		l.times[pkt.SequenceNumber]++
		if prev, ok := l.payloads[pkt.SequenceNumber]; ok && !bytes.Equal(prev, pkt.Payload) {
			l.payloads[pkt.SequenceNumber] = nil // marks a mismatch
		} else if !ok {
			l.payloads[pkt.SequenceNumber] = bytes.Clone(pkt.Payload)
		}
		l.mu.Unlock()
	}
}

// TestNACKAnsweredFromHistory: a subscriber that asks for packets it
// never received gets them, from the track's history (the stage keeps no
// per-subscriber copies). They are packets sent before it subscribed,
// which an earlier subscriber received: SRTP's replay protection would
// drop a packet the asker already has.
func TestNACKAnsweredFromHistory(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "nack")
	_, tok := publish(t, env, st, "alice")
	early, _ := subscribeLog(t, env, st, *tok.ParticipantId)
	early.wait(t, 20)
	late, sub := subscribeLog(t, env, st, *tok.ParticipantId)
	late.wait(t, 20)
	late.mu.Lock()
	seqs := []uint16{late.first - 1, late.first - 2, late.first - 5}
	late.mu.Unlock()
	checkResent(t, early, late, sub, seqs)
}

// checkResent asks sub for seqs again (a NACK) and checks that late
// receives each, byte for byte what early received.
func checkResent(t *testing.T, early, late *seqLog, sub *client.Subscription, seqs []uint16) {
	t.Helper()
	late.mu.Lock()
	tr := late.track
	late.mu.Unlock()
	if err := sub.RequestRetransmission(tr, seqs...); err != nil {
		t.Fatal(err)
	}
	for _, seq := range seqs {
		testkit.WaitFor(t, 5*time.Second, 10*time.Millisecond, testkit.Until(
			fmt.Sprintf("packet %d sent again", seq), func() bool {
				late.mu.Lock()
				defer late.mu.Unlock()
				return late.times[seq] >= 1
			}))
		early.mu.Lock()
		want := early.payloads[seq]
		early.mu.Unlock()
		late.mu.Lock()
		got := late.payloads[seq]
		late.mu.Unlock()
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("packet %d: %d bytes resent, want the %d bytes the earlier subscriber got", seq, len(got), len(want))
		}
	}
}

func subscribeLog(t *testing.T, env *stagetest.Env, st types.Stage, publisherID string) (*seqLog,
	*client.Subscription) {
	t.Helper()
	stok := env.Token(t, *st.Arn, "viewer", nil, types.ParticipantTokenCapabilitySubscribe)
	l := &seqLog{payloads: map[uint16][]byte{}, times: map[uint16]int{}}
	sub, err := client.Subscribe(env.Ctx, client.WHEPURL(*st.Endpoints.Whip, publisherID), *stok.Token,
		loopback, l.onTrack)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	return l, sub
}

func (l *seqLog) wait(t *testing.T, packets int) {
	t.Helper()
	testkit.WaitFor(t, 15*time.Second, 20*time.Millisecond, testkit.Until(fmt.Sprintf("%d video packets", packets),
		func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return len(l.payloads) >= packets
		}))
}

// TestSubscriberQuota: subscribers have a quota of their own, apart from
// the 12 publishers: past it a new subscriber is refused with 503
// QUOTA_EXCEEDED, while a publisher may still join and a participant
// already subscribed may subscribe to it.
func TestSubscriberQuota(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Stage: stage.Config{MaxSubscribers: 2}})
	st := env.CreateStage(t, "quota")
	_, alice := publish(t, env, st, "alice")
	whep := client.WHEPURL(*st.Endpoints.Whip, *alice.ParticipantId)
	var viewers []types.ParticipantToken
	for i := range 3 {
		viewers = append(viewers, env.Token(t, *st.Arn, fmt.Sprintf("viewer%d", i), nil,
			types.ParticipantTokenCapabilitySubscribe))
	}
	for _, v := range viewers[:2] {
		s, err := client.Subscribe(env.Ctx, whep, *v.Token, loopback, func(*webrtc.TrackRemote, *webrtc.RTPReceiver) {})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
	}
	if status, body := post(t, whep, *viewers[2].Token, "application/sdp", stagetest.OfferSDP(t)); status != 503 ||
		!strings.Contains(body, "maximum of 2 subscribers") {
		t.Errorf("third subscriber: %d %q, want 503 naming the quota", status, body)
	}
	// Publishers have their own limit; and the quota counts participants,
	// not connections: viewer0 may subscribe to bob too.
	_, bob := publish(t, env, st, "bob")
	again, err := client.Subscribe(env.Ctx, client.WHEPURL(*st.Endpoints.Whip, *bob.ParticipantId), *viewers[0].Token,
		loopback, func(*webrtc.TrackRemote, *webrtc.RTPReceiver) {})
	if err != nil {
		t.Errorf("an admitted subscriber's second subscription: %v", err)
	} else {
		_ = again.Close(context.Background())
	}
	session := activeSession(t, env, st)
	if got := events(t, env, st, session, *viewers[2].ParticipantId); !slices.Equal(got,
		[]string{"JOIN_ERROR:QUOTA_EXCEEDED"}) {
		t.Errorf("the refused viewer's events = %v", got)
	}
}
