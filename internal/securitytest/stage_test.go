//go:build security

package securitytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

// TestStageLimits: one token, replayed many times, costs the stage
// refusals, not peer connections, goroutines or stored events.
func TestStageLimits(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "limits")
	pub := env.Token(t, *st.Arn, "publisher", nil, types.ParticipantTokenCapabilityPublish)
	env.PublishSynth(t, st, pub, synth.Config{Width: 160, Height: 90}, client.PublishOptions{})
	attacker := env.Token(t, *st.Arn, "attacker", nil, types.ParticipantTokenCapabilitySubscribe)
	whep := client.WHEPURL(*st.Endpoints.Whip, *pub.ParticipantId)
	offer := stagetest.OfferSDP(t)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	// The publisher's relays start with its tracks: before the goroutine
	// snapshot below, not during the attack.
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("the publisher's tracks flow", func() bool {
		sess, err := env.API.GetStage(env.Ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
		if err != nil || sess.Stage.ActiveSessionId == nil {
			return false
		}
		out, err := env.API.ListParticipants(env.Ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn,
			SessionId: sess.Stage.ActiveSessionId, FilterByPublished: true})
		return err == nil && len(out.Participants) == 1
	}))

	Attack(t, "500 WHEP offers from one token", func(t *testing.T) {
		leaks := testkit.SnapshotGoroutines(testkit.IdleHTTPConns)
		made, _ := env.Stage.PeerConnections()
		codes := flood(t, hc, 500, 50, whep, *attacker.Token, offer)
		t.Logf("answers to 500 offers: %v", codes)
		admitted := codes[http.StatusCreated]
		if admitted > 1 || codes[http.StatusConflict]+admitted != 500 {
			t.Errorf("answers to 500 offers to one publisher: %v; want at most one 201, the rest 409", codes)
		}
		if after, _ := env.Stage.PeerConnections(); after-made > 1 {
			t.Errorf("the stage made %d peer connections for 500 offers; want at most 1", after-made)
		}
		dropSessions(t, env, st, attacker)
		hc.CloseIdleConnections()
		testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, testkit.Until("the attacker's peers closed",
			func() bool { _, open := env.Stage.PeerConnections(); return open == 1 })) // the publisher's
		leaks.CheckEnded(t)
	})

	Attack(t, "50 events sockets from one token", func(t *testing.T) {
		watcher := env.Token(t, *st.Arn, "watcher", nil, types.ParticipantTokenCapabilitySubscribe)
		open, refused := 0, 0
		for range 50 {
			ev, err := client.DialEvents(env.Ctx, *st.Endpoints.Events, *watcher.Token)
			var se *client.StatusError
			switch {
			case err == nil:
				open++
				defer ev.Close()
			case errors.As(err, &se) && se.Status == http.StatusTooManyRequests:
				refused++
			default:
				t.Errorf("events socket: %v", err)
			}
		}
		if open != 4 || refused != 46 {
			t.Errorf("50 events sockets of one token: %d open, %d refused 429; want 4 and 46", open, refused)
		}
	})

	Attack(t, "10,000 bad subscribe requests", func(t *testing.T) {
		session := activeSession(t, env, st)
		prober := env.Token(t, *st.Arn, "prober", nil, types.ParticipantTokenCapabilitySubscribe)
		codes := flood(t, hc, 10_000, 32, client.WHEPURL(*st.Endpoints.Whip, "nobody"), *prober.Token, offer)
		if codes[http.StatusNotFound] != 10_000 {
			t.Errorf("answers to 10,000 subscriptions to nobody: %v; want 404 each", codes)
		}
		keys, err := env.Store.Events.Keys(env.Ctx, stageID(t, st)+"."+session+"."+*prober.ParticipantId+".")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("error events stored for 10,000 bad requests: %d", len(keys))
		if len(keys) > 20 {
			t.Errorf("%d error events stored for one participant; want at most 20", len(keys))
		}
	})
}

// TestStageTokens: tokens cannot reach further than their capabilities,
// their signer and their revocation allow.
func TestStageTokens(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "tokens")

	Attack(t, "WHIP with a SUBSCRIBE-only token", func(t *testing.T) {
		tok := env.Token(t, *st.Arn, "lurker", nil, types.ParticipantTokenCapabilitySubscribe)
		made, _ := env.Stage.PeerConnections()
		status := postOffer(t, http.DefaultClient, *st.Endpoints.Whip, *tok.Token, stagetest.OfferSDP(t))
		if status != http.StatusForbidden {
			t.Errorf("WHIP with a SUBSCRIBE-only token answered %d; want 403", status)
		}
		if after, _ := env.Stage.PeerConnections(); after != made {
			t.Errorf("the stage made %d peer connections for a refused WHIP", after-made)
		}
		if rooms := env.Stage.ActiveStages(); len(rooms) != 0 {
			t.Errorf("stages opened by a refused WHIP: %v", rooms)
		}
	})

	Attack(t, "reserved participant id signed with an imported key", func(t *testing.T) {
		signer := env.ImportedSigner(t)
		tok := sign(t, signer, st, tokenstore.ReservedParticipantPrefix+"forged")
		refusedEverywhere(t, env, st, tok, http.StatusForbidden)
	})

	Attack(t, "token signed with a key the server does not know", func(t *testing.T) {
		key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		ns := ivs.Namespace{Region: stagetest.Region, Account: stagetest.Account}
		for _, kid := range []string{tokenstore.ServerKeyID(ns), ns.ARN(ivs.TypePublicKey, "notImported1")} {
			s, err := token.NewSigner(key, kid)
			if err != nil {
				t.Fatal(err)
			}
			refusedEverywhere(t, env, st, sign(t, s, st, "forger"), http.StatusUnauthorized)
		}
	})

	Attack(t, "events socket of a revoked participant", func(t *testing.T) {
		tok := env.Token(t, *st.Arn, "troll", nil)
		ev, err := client.DialEvents(env.Ctx, *st.Endpoints.Events, *tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		defer ev.Close()
		if _, err := ev.Next(env.Ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := env.API.DisconnectParticipant(env.Ctx, &ivsrealtime.DisconnectParticipantInput{
			StageArn: st.Arn, ParticipantId: tok.ParticipantId}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(env.Ctx, 10*time.Second)
		defer cancel()
		for {
			if _, err = ev.Next(ctx); err != nil {
				break
			}
		}
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Errorf("the revoked participant's events socket ended with %v; want closed 1008", err)
		}
		if _, err := client.DialEvents(env.Ctx, *st.Endpoints.Events, *tok.Token); err == nil {
			t.Errorf("the revoked participant opened the events socket again")
		}
	})
}

// flood posts n offers, conc at a time, and counts the answers by status.
func flood(t *testing.T, hc *http.Client, n, conc int, url, tok, offer string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	codes := map[int]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				status := postOffer(t, hc, url, tok, offer)
				mu.Lock()
				codes[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return codes
}

func postOffer(t *testing.T, hc *http.Client, url, tok, offer string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(offer))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := hc.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// dropSessions disconnects the participant of tok, closing whatever the
// attack got admitted.
func dropSessions(t *testing.T, env *stagetest.Env, st types.Stage, tok types.ParticipantToken) {
	t.Helper()
	if _, err := env.API.DisconnectParticipant(env.Ctx, &ivsrealtime.DisconnectParticipantInput{
		StageArn: st.Arn, ParticipantId: tok.ParticipantId}); err != nil {
		t.Fatal(err)
	}
}

// refusedEverywhere checks that tok opens none of the stage's doors: WHIP,
// WHEP and events all refuse it with status, and nothing is recorded.
func refusedEverywhere(t *testing.T, env *stagetest.Env, st types.Stage, tok string, status int) {
	t.Helper()
	made, _ := env.Stage.PeerConnections()
	for _, url := range []string{*st.Endpoints.Whip, client.WHEPURL(*st.Endpoints.Whip, "anyone")} {
		if got := postOffer(t, http.DefaultClient, url, tok, stagetest.OfferSDP(t)); got != status {
			t.Errorf("POST %s answered %d; want %d", url, got, status)
		}
	}
	_, err := client.DialEvents(env.Ctx, *st.Endpoints.Events, tok)
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != status {
		t.Errorf("events socket: %v; want refused %d", err, status)
	}
	if after, _ := env.Stage.PeerConnections(); after != made {
		t.Errorf("the stage made %d peer connections for a refused token", after-made)
	}
	keys, err := env.Store.Participants.Keys(env.Ctx, stageID(t, st)+".")
	if err != nil || len(keys) != 0 {
		t.Errorf("participants recorded: %v (%v); want none", keys, err)
	}
}

func sign(t *testing.T, s *token.Signer, st types.Stage, pid string) string {
	t.Helper()
	now := time.Now()
	tok, err := s.Sign(token.Claims{ParticipantID: pid, StageARN: *st.Arn, StageID: stageID(t, st),
		Publish: true, Subscribe: true, IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func stageID(t *testing.T, st types.Stage) string {
	t.Helper()
	a, err := ivs.ParseARN(*st.Arn)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func activeSession(t *testing.T, env *stagetest.Env, st types.Stage) string {
	t.Helper()
	out, err := env.API.GetStage(env.Ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Stage.ActiveSessionId)
}
