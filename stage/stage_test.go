package stage_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-rt/stagehand/internal/promtest"
	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

var loopback = stagetest.Loopback

// marked is a VP8 "frame" whose payload says who sent it and its number:
// the stage forwards bytes, so the subscriber can check them.
func marked(who string, n int) []byte {
	return fmt.Appendf(nil, "%s#%06d|%s", who, n, bytes.Repeat([]byte{0xAB}, 2000))
}

// sendLoop writes numbered samples until ctx ends.
func sendLoop(ctx context.Context, p *client.Publisher, who string) {
	tick := time.NewTicker(33 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if p.Video != nil {
			_ = p.Video.WriteSample(media.Sample{Data: marked(who, n), Duration: 33 * time.Millisecond})
		}
		if p.Audio != nil {
			_ = p.Audio.WriteSample(media.Sample{Data: []byte{0xF8, 0xFF, 0xFE}, Duration: 20 * time.Millisecond})
		}
	}
}

// publish joins a publisher and keeps it sending until the test ends.
func publish(t *testing.T, env *stagetest.Env, st types.Stage, user string) (*client.Publisher, types.ParticipantToken) {
	t.Helper()
	tok := env.Token(t, *st.Arn, user, map[string]string{"name": user})
	p, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{Options: withUA(loopback, "stagehand-test/1.2")})
	if err != nil {
		t.Fatalf("publish %s: %v", user, err)
	}
	ctx, cancel := context.WithCancel(env.Ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sendLoop(ctx, p, user) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = p.Close(context.Background())
	})
	return p, tok
}

func withUA(o client.Options, ua string) client.Options { o.UserAgent = ua; return o }

// received counts what a subscriber gets per track kind, and the senders
// named in the VP8 payloads.
type received struct {
	mu      sync.Mutex
	packets map[string]int
	senders map[string]bool
	kinds   []string
}

func (r *received) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	r.mu.Lock()
	r.kinds = append(r.kinds, t.Kind().String()+" "+t.Codec().MimeType)
	r.mu.Unlock()
	var vp8 codecs.VP8Packet
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.packets[t.Kind().String()]++
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			if payload, err := vp8.Unmarshal(pkt.Payload); err == nil && vp8.S == 1 {
				if who, _, ok := bytes.Cut(payload, []byte("#")); ok {
					r.senders[string(who)] = true
				}
			}
		}
		r.mu.Unlock()
	}
}

func (r *received) count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.packets[kind]
}

func subscribe(t *testing.T, env *stagetest.Env, st types.Stage, publisherID string) (*client.Subscription, *received) {
	t.Helper()
	s, r, _ := subscribeAs(t, env, st, publisherID)
	return s, r
}

// watch collects the events channel's messages.
type watch struct {
	mu   sync.Mutex
	msgs []stage.Message
}

func watchEvents(t *testing.T, env *stagetest.Env, st types.Stage) *watch {
	t.Helper()
	tok := env.Token(t, *st.Arn, "watcher", nil, types.ParticipantTokenCapabilitySubscribe)
	ev, err := client.DialEvents(env.Ctx, *st.Endpoints.Events, *tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	w := &watch{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := ev.Next(env.Ctx)
			if err != nil {
				return
			}
			w.mu.Lock()
			w.msgs = append(w.msgs, m)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = ev.Close(); <-done })
	return w
}

// seen lists "type participant-user tracks" for each message.
func (w *watch) seen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		s := string(m.Type)
		if m.Participant != nil {
			s += " " + m.Participant.UserID
			for _, tr := range m.Participant.Tracks {
				s += " " + tr.Kind + ":" + tr.Codec
			}
		}
		out = append(out, s)
	}
	return out
}

func (w *watch) has(entry string) bool { return slices.Contains(w.seen(), entry) }

func events(t *testing.T, env *stagetest.Env, st types.Stage, session, pid string) []string {
	t.Helper()
	out, err := env.API.ListParticipantEvents(env.Ctx, &ivsrealtime.ListParticipantEventsInput{
		StageArn: st.Arn, SessionId: aws.String(session), ParticipantId: aws.String(pid)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range out.Events {
		n := string(e.Name)
		if e.RemoteParticipantId != nil && *e.RemoteParticipantId != "" {
			n += "<-" + *e.RemoteParticipantId
		}
		if e.ErrorCode != "" {
			n += ":" + string(e.ErrorCode)
		}
		names = append(names, n)
	}
	return names
}

func activeSession(t *testing.T, env *stagetest.Env, st types.Stage) string {
	t.Helper()
	out, err := env.API.GetStage(env.Ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Stage.ActiveSessionId)
}

// TestPublishSubscribeLifecycle follows one publisher and one subscriber
// through join, relay, leave and the session's end, as the events channel
// and the API see it.
func TestPublishSubscribeLifecycle(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "lifecycle")
	w := watchEvents(t, env, st)
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("snapshot", func() bool { return w.has("snapshot") }))

	pub, ptok := publish(t, env, st, "alice")
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("tracks-published", func() bool {
		return w.has("tracks-published alice audio:audio/opus video:video/VP8")
	}))
	session := activeSession(t, env, st)
	if !strings.HasPrefix(session, "st-") {
		t.Fatalf("activeSessionId = %q while alice publishes", session)
	}
	sub, got := subscribe(t, env, st, *ptok.ParticipantId)
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("audio and video relayed", func() bool { return got.count("video") > 20 && got.count("audio") > 20 }))
	got.mu.Lock()
	if !got.senders["alice"] || len(got.senders) != 1 {
		t.Errorf("video payloads came from %v, want alice's", got.senders)
	}
	got.mu.Unlock()

	parts, err := env.API.ListParticipants(env.Ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn, SessionId: aws.String(session)})
	if err != nil {
		t.Fatal(err)
	}
	byUser := map[string]types.ParticipantSummary{}
	for _, p := range parts.Participants {
		byUser[aws.ToString(p.UserId)] = p
	}
	if a := byUser["alice"]; a.State != types.ParticipantStateConnected || !a.Published || a.FirstJoinTime == nil {
		t.Errorf("alice = %+v, want CONNECTED, published, with firstJoinTime", a)
	}
	if v := byUser["viewer"]; v.State != types.ParticipantStateConnected || v.Published {
		t.Errorf("viewer = %+v, want CONNECTED, not published", v)
	}
	gp, err := env.API.GetParticipant(env.Ctx, &ivsrealtime.GetParticipantInput{StageArn: st.Arn, SessionId: aws.String(session), ParticipantId: ptok.ParticipantId})
	if err != nil {
		t.Fatal(err)
	}
	if p := gp.Participant; p.Attributes["name"] != "alice" || aws.ToString(p.SdkVersion) != "1.2" || p.Protocol != types.ParticipantProtocolWhip {
		t.Errorf("GetParticipant = attributes %v sdkVersion %q protocol %q", p.Attributes, aws.ToString(p.SdkVersion), p.Protocol)
	}

	// Alice leaves with DELETE: her subscriber is closed, both leave, the
	// session ends.
	if err := pub.Close(env.Ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the subscription outlived its publisher")
	}
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("session end", func() bool { return activeSession(t, env, st) == "" }))
	checkStageMetrics(t, env, 0, 0, 0, 0, 0)
	ss, err := env.API.GetStageSession(env.Ctx, &ivsrealtime.GetStageSessionInput{StageArn: st.Arn, SessionId: aws.String(session)})
	if err != nil {
		t.Fatal(err)
	}
	if ss.StageSession.EndTime == nil || !ss.StageSession.EndTime.After(*ss.StageSession.StartTime) {
		t.Errorf("session %+v has no end after its start", ss.StageSession)
	}
	if got, want := events(t, env, st, session, *ptok.ParticipantId), []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"}; !slices.Equal(got, want) {
		t.Errorf("alice's events = %v, want %v", got, want)
	}
	viewer := findUser(t, env, st, session, "viewer")
	if got, want := events(t, env, st, session, viewer), []string{"JOINED", "SUBSCRIBE_STARTED<-" + *ptok.ParticipantId, "SUBSCRIBE_STOPPED<-" + *ptok.ParticipantId, "LEFT"}; !slices.Equal(got, want) {
		t.Errorf("viewer's events = %v, want %v", got, want)
	}
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("events channel messages", func() bool { return w.has("session-ended") }))
	want := []string{"snapshot", "session-started", "participant-joined alice", "tracks-published alice audio:audio/opus video:video/VP8",
		"participant-joined viewer", "tracks-unpublished alice", "participant-left alice", "participant-left viewer", "session-ended"}
	if got := w.seen(); !slices.Equal(got, want) {
		t.Errorf("events channel:\n got %q\nwant %q", got, want)
	}
}

func findUser(t *testing.T, env *stagetest.Env, st types.Stage, session, user string) string {
	t.Helper()
	out, err := env.API.ListParticipants(env.Ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn, SessionId: aws.String(session), FilterByUserId: aws.String(user)})
	if err != nil || len(out.Participants) != 1 {
		t.Fatalf("participant %s: %v %v", user, out, err)
	}
	return *out.Participants[0].ParticipantId
}

// TestManyPublishers: N publishers, one subscriber per publisher; each
// subscription carries that publisher's media only.
func TestManyPublishers(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "many")
	const n = 4
	var subs []*received
	for i := range n {
		user := fmt.Sprintf("user%d", i)
		_, tok := publish(t, env, st, user)
		_, r := subscribe(t, env, st, *tok.ParticipantId)
		subs = append(subs, r)
	}
	for i, r := range subs {
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("media of each publisher", func() bool { return r.count("video") > 10 && r.count("audio") > 10 }))
		r.mu.Lock()
		if want := fmt.Sprintf("user%d", i); len(r.senders) != 1 || !r.senders[want] {
			t.Errorf("subscription %d got frames from %v, want only %s", i, r.senders, want)
		}
		r.mu.Unlock()
	}
	out, err := env.API.ListParticipants(env.Ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn, SessionId: aws.String(activeSession(t, env, st)), FilterByPublished: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Participants) != n {
		t.Errorf("%d published participants, want %d", len(out.Participants), n)
	}
	checkStageMetrics(t, env, 1, 2*n, n, n, n)
}

// checkStageMetrics waits up to 5 s for the stage server's occupancy
// metrics to read as given (peers leave a moment after their events).
func checkStageMetrics(t *testing.T, env *stagetest.Env, rooms, joined, publishing, publishPeers, subscribePeers int) {
	t.Helper()
	cs := []prometheus.Collector{env.Stage.Collector()}
	want := []struct {
		name   string
		labels []string
		want   int
	}{
		{"stagehand_stage_rooms", nil, rooms},
		{"stagehand_stage_participants", []string{"state", "joined"}, joined},
		{"stagehand_stage_participants", []string{"state", "publishing"}, publishing},
		{"stagehand_stage_peers", []string{"kind", "publish"}, publishPeers},
		{"stagehand_stage_peers", []string{"kind", "subscribe"}, subscribePeers},
	}
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		var wrong []string
		for _, m := range want {
			if got := promtest.Value(t, cs, m.name, m.labels...); got != float64(m.want) {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v, want %d", m.name, m.labels, got, m.want))
			}
		}
		if len(wrong) > 0 {
			return errors.New(strings.Join(wrong, "; "))
		}
		return nil
	})
}

// post sends a WHIP/WHEP request by hand.
func post(t *testing.T, url, tok, contentType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRefusals: bad requests get a clear status and message, and join
// errors are recorded as events of the active session.
func TestRefusals(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "refusals")
	_, alice := publish(t, env, st, "alice")
	whip := *st.Endpoints.Whip
	subOnly := env.Token(t, *st.Arn, "lurker", nil, types.ParticipantTokenCapabilitySubscribe)
	pubOnly := env.Token(t, *st.Arn, "shy", nil, types.ParticipantTokenCapabilityPublish)
	good := env.Token(t, *st.Arn, "bob", nil)
	gone := env.CreateStage(t, "gone")
	goneTok := env.Token(t, *gone.Arn, "late", nil)
	if _, err := env.API.DeleteStage(env.Ctx, &ivsrealtime.DeleteStageInput{Arn: gone.Arn}); err != nil {
		t.Fatal(err)
	}
	expired := selfSigned(t, env, st, time.Now().Add(-time.Hour))
	sdp := "application/sdp"
	for _, tc := range []struct {
		name, url, tok, ctype, body string
		status                      int
		msg                         string
	}{
		{"no token", whip, "", sdp, "v=0", 401, "missing participant token"},
		{"garbage token", whip, "not.a.token", sdp, "v=0", 401, "participant token refused"},
		{"expired token", whip, expired, sdp, "v=0", 401, "expired"},
		{"subscribe-only publishes", whip, *subOnly.Token, sdp, stagetest.OfferSDP(t), 403, "no PUBLISH capability"},
		{"publish-only subscribes", client.WHEPURL(whip, *alice.ParticipantId), *pubOnly.Token, sdp, stagetest.OfferSDP(t), 403, "no SUBSCRIBE capability"},
		{"wrong content type", whip, *good.Token, "application/json", "{}", 415, "application/sdp"},
		{"malformed SDP", whip, *good.Token, sdp, "this is not SDP", 400, "not a usable SDP offer"},
		{"empty offer", whip, *good.Token, sdp, "", 400, "empty"},
		{"no publisher", client.WHEPURL(whip, "nobody"), *good.Token, sdp, stagetest.OfferSDP(t), 404, "not publishing"},
		{"deleted stage", whip, *goneTok.Token, sdp, stagetest.OfferSDP(t), 404, "does not exist"},
		{"already publishing", whip, *alice.Token, sdp, stagetest.OfferSDP(t), 409, "already publishing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, tc.url, tc.tok, tc.ctype, tc.body)
			if status != tc.status || !strings.Contains(body, tc.msg) {
				t.Errorf("= %d %q, want %d mentioning %q", status, body, tc.status, tc.msg)
			}
		})
	}
	session := activeSession(t, env, st)
	lurker := *subOnly.ParticipantId
	if got := events(t, env, st, session, lurker); !slices.Equal(got, []string{"JOIN_ERROR:INSUFFICIENT_CAPABILITIES"}) {
		t.Errorf("lurker's events = %v", got)
	}
	if got := events(t, env, st, session, *good.ParticipantId); !slices.Equal(got, []string{"SUBSCRIBE_ERROR:PUBLISHER_NOT_FOUND"}) {
		t.Errorf("bob's events = %v", got)
	}
}

// selfSigned imports a public key and signs a token with its private key,
// as IVS customers do, here one that expired at exp.
func selfSigned(t *testing.T, env *stagetest.Env, st types.Stage, exp time.Time) string {
	t.Helper()
	s := env.ImportedSigner(t)
	tok, err := s.Sign(token.Claims{ParticipantID: "selfsigned1", StageARN: *st.Arn, Publish: true, Subscribe: true,
		IssuedAt: exp.Add(-time.Hour), ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestDisconnectParticipant: the API's DisconnectParticipant ends the
// peer connection, records LEFT, and the token cannot join again.
func TestDisconnectParticipant(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "disconnect")
	_, keep := publish(t, env, st, "keeper")
	pub, tok := publish(t, env, st, "troll")
	session := activeSession(t, env, st)
	if _, err := env.API.DisconnectParticipant(env.Ctx, &ivsrealtime.DisconnectParticipantInput{
		StageArn: st.Arn, ParticipantId: tok.ParticipantId, Reason: aws.String("spam")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the disconnected publisher's connection stayed up")
	}
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("troll LEFT", func() bool {
		ev := events(t, env, st, session, *tok.ParticipantId)
		return len(ev) > 0 && ev[len(ev)-1] == "LEFT"
	}))
	_, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{Options: loopback})
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != 403 || !strings.Contains(se.Message, "disconnected") {
		t.Errorf("rejoin with a revoked token: %v, want 403", err)
	}
	// Waited for: under load, the keeper's media may start late.
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		got := events(t, env, st, session, *keep.ParticipantId)
		if !slices.Equal(got, []string{"JOINED", "PUBLISH_STARTED"}) {
			return fmt.Errorf("the other participant's events = %v", got)
		}
		return nil
	})
}

// TestNoGoroutineLeft: a stage server that had publishers, subscribers
// and watchers leaves no goroutine behind once closed.
func TestNoGoroutineLeft(t *testing.T) {
	check := testkit.CheckGoroutines(t, testkit.IdleHTTPConns)
	t.Run("stage", func(t *testing.T) {
		env := stagetest.Start(t, stagetest.Options{})
		st := env.CreateStage(t, "leak")
		watchEvents(t, env, st)
		_, tok := publish(t, env, st, "a")
		_, r := subscribe(t, env, st, *tok.ParticipantId)
		testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("media", func() bool { return r.count("video") > 5 }))
	})
	check()
}

// TestHelperPublisher is not a test: TestVanishedPublisher runs the test
// binary again with it, as a publisher process to SIGKILL.
func TestHelperPublisher(t *testing.T) {
	whip, tok := os.Getenv("STAGE_HELPER_WHIP"), os.Getenv("STAGE_HELPER_TOKEN")
	if whip == "" {
		t.Skip("helper process only")
	}
	ctx := context.Background()
	p, err := client.Publish(ctx, whip, tok, client.PublishOptions{Options: loopback})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("publishing")
	sendLoop(ctx, p, "ghost")
}

// TestVanishedPublisher: a publisher killed without DELETE is noticed by
// ICE/DTLS timeouts and recorded as having left.
func TestVanishedPublisher(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Stage: stage.Config{ICEDisconnectedTimeout: time.Second, ICEFailedTimeout: time.Second}})
	st := env.CreateStage(t, "vanish")
	tok := env.Token(t, *st.Arn, "ghost", nil)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPublisher$")
	cmd.Env = append(os.Environ(), "STAGE_HELPER_WHIP="+*st.Endpoints.Whip, "STAGE_HELPER_TOKEN="+*tok.Token)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "publishing" {
		t.Fatalf("helper publisher: %q", line)
	}
	session := activeSession(t, env, st)
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("PUBLISH_STARTED", func() bool {
		return slices.Contains(events(t, env, st, session, *tok.ParticipantId), "PUBLISH_STARTED")
	}))
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("LEFT after the kill", func() bool {
		ev := events(t, env, st, session, *tok.ParticipantId)
		return len(ev) > 0 && ev[len(ev)-1] == "LEFT"
	}))
	t.Logf("vanished publisher left %v after SIGKILL", time.Since(killed).Round(100*time.Millisecond))
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("session end", func() bool { return activeSession(t, env, st) == "" }))
}

// TestKeyframeRequestsReachPublisher: a subscriber's PLI reaches the
// publisher through the stage (which also asks for one when a subscriber
// connects), at most every 200 ms however many ask.
func TestKeyframeRequestsReachPublisher(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "pli")
	tok := env.Token(t, *st.Arn, "pub", nil)
	var requests atomic.Int32
	p, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{Options: loopback,
		OnKeyframeRequest: func() { requests.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(env.Ctx)
	defer cancel()
	go sendLoop(ctx, p, "pub")
	defer p.Close(context.Background())
	video := make(chan *webrtc.TrackRemote, 1)
	r := &received{packets: map[string]int{}, senders: map[string]bool{}}
	stok := env.Token(t, *st.Arn, "sub", nil, types.ParticipantTokenCapabilitySubscribe)
	sub, err := client.Subscribe(env.Ctx, client.WHEPURL(*st.Endpoints.Whip, *tok.ParticipantId), *stok.Token, loopback,
		func(tr *webrtc.TrackRemote, rc *webrtc.RTPReceiver) {
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				video <- tr
			}
			r.onTrack(tr, rc)
		})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("the stage's keyframe request on subscribe", func() bool { return requests.Load() >= 1 }))
	tr := <-video
	time.Sleep(300 * time.Millisecond) // past the 200 ms limit that the first request started
	before := requests.Load()
	for range 5 { // a burst: one request gets through the 200 ms limit
		if err := sub.RequestKeyframe(tr); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("the subscriber's PLI at the publisher", func() bool { return requests.Load() > before }))
	time.Sleep(100 * time.Millisecond) // time for more requests, which must not come
	if got := requests.Load() - before; got != 1 {
		t.Errorf("a burst of 5 PLIs became %d keyframe requests, want 1", got)
	}
}

// TestEndStaleSessions: sessions a killed stage server left open are ended
// by the next one, with their participants recorded as having left.
func TestEndStaleSessions(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "stale")
	_, tok := publish(t, env, st, "orphan")
	session := activeSession(t, env, st)
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("PUBLISH_STARTED", func() bool {
		return slices.Contains(events(t, env, st, session, *tok.ParticipantId), "PUBLISH_STARTED")
	}))
	// A second stage server on the same store finds the session open but
	// not its own: as after a crash of the first.
	v, err := tokenstore.NewVerifier(env.Ctx, env.Store, ivs.Namespace{Region: stagetest.Region, Account: stagetest.Account})
	if err != nil {
		t.Fatal(err)
	}
	next, err := stage.New(stage.Config{}, v, env.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	n, err := next.EndStaleSessions(env.Ctx)
	if err != nil || n != 1 {
		t.Fatalf("EndStaleSessions = %d, %v; want 1 session ended", n, err)
	}
	if got := activeSession(t, env, st); got != "" {
		t.Errorf("activeSessionId = %q after recovery", got)
	}
	ev := events(t, env, st, session, *tok.ParticipantId)
	if len(ev) == 0 || ev[len(ev)-1] != "LEFT" {
		t.Errorf("orphan's events = %v, want LEFT last", ev)
	}
	if n, _ := next.EndStaleSessions(env.Ctx); n != 0 {
		t.Errorf("a second recovery ended %d sessions", n)
	}
}

// TestLateTrack: a track that starts after the wait is announced again,
// with every track, so subscribers can subscribe to it.
func TestLateTrack(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Stage: stage.Config{TrackWait: 300 * time.Millisecond}})
	st := env.CreateStage(t, "late")
	w := watchEvents(t, env, st)
	tok := env.Token(t, *st.Arn, "slow", nil)
	p, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{Options: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx, cancel := context.WithCancel(env.Ctx)
	defer cancel()
	go func() { // audio at once, video a second later
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = p.Audio.WriteSample(media.Sample{Data: []byte{0xF8, 0xFF, 0xFE}, Duration: 20 * time.Millisecond})
			if time.Since(start) > time.Second {
				_ = p.Video.WriteSample(media.Sample{Data: marked("slow", n), Duration: 20 * time.Millisecond})
			}
		}
	}()
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("the late video announced", func() bool { return w.has("tracks-published slow audio:audio/opus video:video/VP8") }))
	if !w.has("tracks-published slow audio:audio/opus") {
		t.Errorf("events channel %q: no first announcement with audio only", w.seen())
	}
	_, r := subscribe(t, env, st, *tok.ParticipantId)
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, testkit.Until("video after resubscribing", func() bool { return r.count("video") > 5 }))
}
