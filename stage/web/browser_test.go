package web_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/browsertest"
	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/stage/web"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/trackdecode"
)

var loopback = stagetest.Loopback

// browser is a headless Chromium (internal/browsertest) with one tab.
type browser struct {
	*browsertest.Browser
	ctx context.Context // the tab
}

// startChromium starts a fresh Chromium, stopped by t.Cleanup.
func startChromium(t *testing.T) *browser {
	t.Helper()
	b := browsertest.Start(t, 1280, 900)
	return &browser{Browser: b, ctx: b.Ctx}
}

func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	b.Do(t, what, actions...)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	return browsertest.Eval[T](t, b.Browser, expr)
}

// pageReport is the page's window.stagehand.
type pageReport struct {
	State         string `json:"state"`
	Publishing    bool   `json:"publishing"`
	ParticipantID string `json:"participantId"`
	Local         *struct {
		FramesSent int    `json:"framesSent"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		Codec      string `json:"codec"`
		Layers     []struct {
			RID        string `json:"rid"`
			FramesSent int    `json:"framesSent"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
		} `json:"layers"`
	} `json:"local"`
	Remote map[string]struct {
		UserID    string `json:"userId"`
		State     string `json:"state"`
		Frames    int    `json:"frames"`
		Presented int    `json:"presented"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		Codec     string `json:"codec"`
	} `json:"remote"`
	Errors     []string `json:"errors"`
	Reconnects struct {
		Events    int `json:"events"`
		Publish   int `json:"publish"`
		Subscribe int `json:"subscribe"`
	} `json:"reconnects"`
}

// waitPage polls window.stagehand until cond holds; an error state fails
// at once.
func (b *browser) waitPage(t *testing.T, what string, timeout time.Duration, cond func(pageReport) bool) pageReport {
	t.Helper()
	var rep pageReport
	testkit.WaitFor(t, timeout, 100*time.Millisecond, func() error {
		// One evaluation, so that both are read at the same moment.
		both := eval[struct {
			Report  pageReport `json:"report"`
			Dataset string     `json:"dataset"`
		}](t, b, `({report: window.stagehand, dataset: document.body.dataset.state})`)
		rep = both.Report
		if rep.State != both.Dataset {
			t.Fatalf("window.stagehand.state %q but body data-state %q", rep.State, both.Dataset)
		}
		if strings.HasPrefix(rep.State, "error") {
			t.Fatalf("waiting for %s, the page says %q (errors %q)", what, rep.State, rep.Errors)
		}
		if !cond(rep) {
			return fmt.Errorf("waiting for %s; the page reports %+v", what, rep)
		}
		return nil
	})
	return rep
}

// decoded is what a Go subscriber decoded of a track.
type decoded struct {
	mu            sync.Mutex
	codec         string
	frames        int
	width, height int
	pictures      map[uint64]bool // hashes of the distinct pictures
	err           error
	dec           *trackdecode.Video
}

func (d *decoded) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dec == nil {
		return fmt.Sprintf("no video track has arrived (error %v)", d.err)
	}
	return fmt.Sprintf("%s: %d frames, error %v, %+v", d.codec, d.frames, d.err, d.dec.Stats())
}

func (d *decoded) snapshot() (frames, width, height, distinct int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.frames, d.width, d.height, len(d.pictures), d.err
}

// decode decodes the video track until it ends, asking for a keyframe while
// the decoder has no usable reference.
func decode(tr *webrtc.TrackRemote, sub *client.Subscription, d *decoded) {
	dec, err := trackdecode.NewVideo(tr.Codec().MimeType)
	d.mu.Lock()
	d.codec, d.err, d.dec = tr.Codec().MimeType, err, dec
	d.mu.Unlock()
	if err != nil {
		return
	}
	defer dec.Close()
	onFrame := func(f *astiav.Frame, _ uint32) {
		pix, err := f.Data().Bytes(1)
		h := fnv.New64a()
		h.Write(pix)
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil {
			d.err = err
			return
		}
		d.frames++
		d.width, d.height = f.Width(), f.Height()
		d.pictures[h.Sum64()] = true
	}
	var lastPLI time.Time
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return // the subscription closed
		}
		if err := dec.Push(pkt, onFrame); err != nil {
			d.mu.Lock()
			d.err = err
			d.mu.Unlock()
			return
		}
		if dec.NeedsKeyframe() && time.Since(lastPLI) > 300*time.Millisecond {
			lastPLI = time.Now()
			_ = sub.RequestKeyframe(tr)
		}
	}
}

// subscribeDecoded subscribes to a publisher from Go and decodes its video.
func subscribeDecoded(t *testing.T, env *stagetest.Env, st types.Stage, publisherID string) (*client.Subscription, *decoded) {
	t.Helper()
	tok := env.Token(t, *st.Arn, "go-viewer", nil, types.ParticipantTokenCapabilitySubscribe)
	video := make(chan *webrtc.TrackRemote, 1)
	sub, err := client.Subscribe(env.Ctx, client.WHEPURL(*st.Endpoints.Whip, publisherID), *tok.Token, loopback,
		func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				select {
				case video <- tr:
				default:
				}
			}
		})
	if err != nil {
		t.Fatalf("subscribe to %s: %v", publisherID, err)
	}
	d := &decoded{pictures: map[uint64]bool{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case tr := <-video:
			decode(tr, sub, d)
		case <-sub.Done():
		}
	})
	t.Cleanup(func() {
		_ = sub.Close(context.Background())
		wg.Wait()
	})
	return sub, d
}

// publishSynth publishes a synthetic VP8 + Opus participant from Go.
func publishSynth(t *testing.T, env *stagetest.Env, st types.Stage, user string) types.ParticipantToken {
	t.Helper()
	tok := env.Token(t, *st.Arn, user, nil, types.ParticipantTokenCapabilityPublish)
	src, err := synth.New(synth.Config{Width: 320, Height: 240, Label: user})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{
		Options: loopback, OnKeyframeRequest: src.RequestKeyframe})
	if err != nil {
		src.Close()
		t.Fatalf("publish %s: %v", user, err)
	}
	ctx, stop := context.WithCancel(env.Ctx)
	ran := make(chan error, 1)
	go func() { ran <- src.Run(ctx, pub.Video, pub.Audio) }()
	t.Cleanup(func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("synth %s: %v", user, err)
		}
		_ = pub.Close(context.Background())
		src.Close()
	})
	return tok
}

func participantEvents(t *testing.T, env *stagetest.Env, st types.Stage, session, pid string) []string {
	t.Helper()
	out, err := env.API.ListParticipantEvents(env.Ctx, &ivsrealtime.ListParticipantEventsInput{
		StageArn: st.Arn, SessionId: aws.String(session), ParticipantId: aws.String(pid)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range out.Events {
		n := string(e.Name)
		if r := aws.ToString(e.RemoteParticipantId); r != "" {
			n += "<-" + r
		}
		if e.ErrorCode != "" {
			n += ":" + string(e.ErrorCode)
		}
		names = append(names, n)
	}
	return names
}

// TestBrowserJoinsStage drives the page in headless Chromium: it publishes
// Chromium's fake camera, which a Go subscriber decodes; it shows a Go
// publisher; Leave makes it leave the stage.
func TestBrowserJoinsStage(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Web: web.Handler()})
	b := startChromium(t) // stops before the stage server: the page leaves first
	st := env.CreateStage(t, "browser")
	tok := env.Token(t, *st.Arn, "chromium", map[string]string{"role": "e2e"})
	pid := *tok.ParticipantId
	start := time.Now()

	b.do(t, "open the page and join",
		chromedp.Navigate(env.StageURL+"/?token="+url.QueryEscape(*tok.Token)),
		chromedp.WaitVisible(chromedp.CSS("#join")),
		chromedp.Click(chromedp.CSS("#join")))
	rep := b.waitPage(t, "publishing", 20*time.Second, func(r pageReport) bool { return r.State == "publishing" })
	if !rep.Publishing || rep.ParticipantID != pid || rep.Local == nil {
		t.Fatalf("publishing page reports %+v, want publishing as %s", rep, pid)
	}
	t.Logf("browser publishing %s %dx%d after %v", rep.Local.Codec, rep.Local.Width, rep.Local.Height, time.Since(start).Round(time.Millisecond))

	// A Go subscriber decodes what the browser sends: Chromium's fake
	// camera, a moving pattern.
	_, got := subscribeDecoded(t, env, st, pid)
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		if n, _, _, _, err := got.snapshot(); n < 10 && err == nil {
			return fmt.Errorf("still waiting for 10 decoded frames of the browser's camera: %v", got)
		}
		return nil // an error too ends the wait: it fails below
	})
	frames, w, h, distinct, err := got.snapshot()
	if err != nil {
		t.Fatalf("decoding the browser's %s: %v", got.codec, err)
	}
	if w == 0 || h == 0 || distinct < frames/2 {
		t.Errorf("decoded %d %s frames of %dx%d, %d distinct; want pictures that change", frames, got.codec, w, h, distinct)
	}
	t.Logf("Go subscriber decoded %d %s frames of %dx%d (%d distinct) after %v", frames, got.codec, w, h, distinct, time.Since(start).Round(time.Millisecond))

	// The API sees a connected, publishing Chrome on Linux.
	sg, err := env.API.GetStage(env.Ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil {
		t.Fatal(err)
	}
	session := aws.ToString(sg.Stage.ActiveSessionId)
	parts, err := env.API.ListParticipants(env.Ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn, SessionId: aws.String(session)})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(parts.Participants, func(p types.ParticipantSummary) bool { return aws.ToString(p.ParticipantId) == pid })
	if i < 0 || parts.Participants[i].State != types.ParticipantStateConnected || !parts.Participants[i].Published {
		t.Errorf("ListParticipants of session %q = %+v; want %s CONNECTED and published", session, parts.Participants, pid)
	}
	gp, err := env.API.GetParticipant(env.Ctx, &ivsrealtime.GetParticipantInput{StageArn: st.Arn, SessionId: aws.String(session), ParticipantId: aws.String(pid)})
	if err != nil {
		t.Fatal(err)
	}
	if p := gp.Participant; aws.ToString(p.BrowserName) != "Chrome" || aws.ToString(p.OsName) != "Linux" || aws.ToString(p.UserId) != "chromium" {
		t.Errorf("GetParticipant = browser %q os %q user %q; want Chrome, Linux, chromium",
			aws.ToString(p.BrowserName), aws.ToString(p.OsName), aws.ToString(p.UserId))
	}

	// A Go publisher joins: the page subscribes and plays it.
	gopher := *publishSynth(t, env, st, "gopher").ParticipantId
	rep = b.waitPage(t, "the Go publisher's frames in the page", 20*time.Second, func(r pageReport) bool {
		return r.Remote[gopher].Frames > 10
	})
	if r := rep.Remote[gopher]; r.UserID != "gopher" || r.Width != 320 || r.Height != 240 || !strings.EqualFold(r.Codec, "video/VP8") {
		t.Errorf("the page shows gopher as %+v; want user gopher, VP8 320x240", r)
	}
	if tiles := eval[int](t, b, fmt.Sprintf(`document.querySelectorAll('figure.tile[data-participant-id=%q] video').length`, gopher)); tiles != 1 {
		t.Errorf("%d video tiles for gopher, want 1", tiles)
	}
	t.Logf("page decoded %d frames of gopher (%d presented) after %v", rep.Remote[gopher].Frames, rep.Remote[gopher].Presented, time.Since(start).Round(time.Millisecond))

	// Leave: the browser participant leaves the stage.
	b.do(t, "leave", chromedp.Click(chromedp.CSS("#leave")))
	b.waitPage(t, "left", 10*time.Second, func(r pageReport) bool { return r.State == "left" && len(r.Remote) == 0 && !r.Publishing })
	want := []string{"JOINED", "PUBLISH_STARTED", "SUBSCRIBE_STARTED<-" + gopher, "SUBSCRIBE_STOPPED<-" + gopher, "PUBLISH_STOPPED", "LEFT"}
	var names []string
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, testkit.Until("the browser's LEFT event", func() bool {
		names = participantEvents(t, env, st, session, pid)
		return len(names) > 0 && names[len(names)-1] == "LEFT"
	}))
	if !slices.Equal(names, want) {
		t.Errorf("the browser's events = %v, want %v", names, want)
	}
	t.Logf("browser joined, published, watched and left in %v", time.Since(start).Round(time.Millisecond))
}

// TestBrowserReconnect: the stage's node goes away and another serves the
// stage at the same URLs; the page reconnects its events channel, its
// publication and its playback by itself, keeping one tile per publisher.
func TestBrowserReconnect(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Web: web.Handler()})
	b := startChromium(t)
	st := env.CreateStage(t, "browser-moves")
	tok := env.Token(t, *st.Arn, "chromium", nil)
	pid := *tok.ParticipantId
	gopher := *publishSynth(t, env, st, "gopher").ParticipantId
	b.do(t, "open the page and join",
		chromedp.Navigate(env.StageURL+"/?autojoin=1&token="+url.QueryEscape(*tok.Token)),
		chromedp.WaitVisible(chromedp.CSS("#leave")))
	b.waitPage(t, "publishing and watching gopher", 20*time.Second, func(r pageReport) bool {
		return r.State == "publishing" && r.Remote[gopher].Frames > 10
	})

	env.RestartStage(t, 500*time.Millisecond)
	restarted := time.Now()
	rep := b.waitPage(t, "publishing again after reconnecting", 40*time.Second, func(r pageReport) bool {
		return r.State == "publishing" && r.Reconnects.Events > 0 && r.Reconnects.Publish > 0
	})
	back := time.Since(restarted)
	frames := rep.Remote[gopher].Frames
	rep = b.waitPage(t, "gopher's frames again", 20*time.Second, func(r pageReport) bool {
		g, ok := r.Remote[gopher]
		return ok && g.Frames > frames+10
	})
	t.Logf("page publishing again %v after the restart, playing gopher again %v after it; reconnects %+v",
		back.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond), rep.Reconnects)
	if tiles := eval[int](t, b, fmt.Sprintf(`document.querySelectorAll('figure.tile[data-participant-id=%q]').length`,
		gopher)); tiles != 1 {
		t.Errorf("%d tiles for gopher after the reconnection, want 1", tiles)
	}
	if len(rep.Errors) > 0 {
		t.Errorf("the page reports errors after reconnecting: %q", rep.Errors)
	}
	_, got := subscribeDecoded(t, env, st, pid)
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		if n, _, _, _, err := got.snapshot(); n < 10 && err == nil {
			return fmt.Errorf("still waiting for 10 decoded frames of the reconnected browser: %v", got)
		}
		return nil
	})
	if _, _, _, _, err := got.snapshot(); err != nil {
		t.Fatalf("decoding the reconnected browser: %v", err)
	}
	b.do(t, "leave", chromedp.Click(chromedp.CSS("#leave")))
	b.waitPage(t, "left", 10*time.Second, func(r pageReport) bool { return r.State == "left" })
}

// TestBrowserReconnectMessage: a node that says it is leaving (a reconnect
// message, then status 1012) is left at once: the page reopens its events
// channel and moves its publication, which the stage, still holding the
// old one, first answers 409: the page DELETEs the old session and offers
// again. The events channel here is a stand-in that says so on demand.
func TestBrowserReconnectMessage(t *testing.T) {
	// The stand-in is served by the page's own server: the page takes
	// ?events= from nowhere else.
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	env := stagetest.Start(t, stagetest.Options{Web: mux})
	b := startChromium(t)
	st := env.CreateStage(t, "browser-told")
	tok := env.Token(t, *st.Arn, "chromium", nil)
	leave := make(chan struct{})
	var dials atomic.Int32
	mux.HandleFunc("/stand-in/events", func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		ctx := conn.CloseRead(r.Context())
		_ = wsjson.Write(ctx, conn, stage.Message{Type: stage.MsgSnapshot, Participants: []stage.ParticipantInfo{}})
		if dials.Add(1) > 1 {
			<-ctx.Done()
			return
		}
		select {
		case <-leave:
			_ = wsjson.Write(ctx, conn, stage.Message{Type: stage.MsgReconnect, Reason: "draining"})
			conn.Close(websocket.StatusServiceRestart, "draining")
		case <-ctx.Done():
		}
	})
	defer close(leave)
	wsURL := "ws" + strings.TrimPrefix(env.StageURL, "http") + "/stand-in/events"
	b.do(t, "open the page and join",
		chromedp.Navigate(env.StageURL+"/?autojoin=1&events="+url.QueryEscape(wsURL)+"&token="+url.QueryEscape(*tok.Token)),
		chromedp.WaitVisible(chromedp.CSS("#leave")))
	b.waitPage(t, "publishing", 20*time.Second, func(r pageReport) bool { return r.State == "publishing" })
	leave <- struct{}{}
	told := time.Now()
	rep := b.waitPage(t, "publishing again after the move", 20*time.Second, func(r pageReport) bool {
		return r.State == "publishing" && r.Reconnects.Events > 0 && r.Reconnects.Publish > 0
	})
	t.Logf("page publishing again %v after the reconnect message", time.Since(told).Round(time.Millisecond))
	if len(rep.Errors) > 0 {
		t.Errorf("the page reports errors after moving: %q", rep.Errors)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d connections to the events channel, want 2", n)
	}
	// The old publication left by DELETE (its offer had been refused 409
	// while the stage held it), which ended the stage session: the new one
	// is in a session of its own.
	testkit.WaitFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		ls, err := env.API.ListStageSessions(env.Ctx, &ivsrealtime.ListStageSessionsInput{StageArn: st.Arn})
		if err != nil {
			return err
		}
		var names [][]string
		for _, ss := range ls.StageSessions {
			names = append(names, participantEvents(t, env, st, aws.ToString(ss.SessionId), *tok.ParticipantId))
		}
		slices.SortFunc(names, func(a, b []string) int { return len(b) - len(a) })
		want := [][]string{{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"}, {"JOINED", "PUBLISH_STARTED"}}
		if !slices.EqualFunc(names, want, slices.Equal) {
			return fmt.Errorf("the browser's events by session = %v, want %v", names, want)
		}
		return nil
	})
	_, got := subscribeDecoded(t, env, st, *tok.ParticipantId)
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		if n, _, _, _, err := got.snapshot(); n < 10 && err == nil {
			return fmt.Errorf("still waiting for 10 decoded frames of the moved browser: %v", got)
		}
		return nil
	})
	if _, _, _, _, err := got.snapshot(); err != nil {
		t.Fatalf("decoding the moved browser: %v", err)
	}
}

// TestBrowserRedirect: in a stage cluster the page is served by a node that
// does not host its stage. Its publication is redirected (307) to the node
// that does, across origins (another port), with the token carried in the
// redirect; its playback is served where the page is, relayed from the
// host (the cascade), and so is the events channel, from NATS.
func TestBrowserRedirect(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Web: web.Handler(), Cluster: &stage.ClusterConfig{}})
	host := env.AddNode(t, stage.ClusterConfig{})
	b := startChromium(t)
	st := env.CreateStage(t, "browser-redirect")
	// gopher publishes through the other node first, which places the stage
	// there.
	onHost := st
	whip := host.URL + "/whip"
	onHost.Endpoints = &types.StageEndpoints{Whip: &whip, Events: st.Endpoints.Events}
	gopher := *publishSynth(t, env, onHost, "gopher").ParticipantId
	if !slices.Contains(host.Server.ActiveStages(), stageIDOf(st)) {
		t.Fatal("the stage is not on the node gopher published to")
	}
	tok := env.Token(t, *st.Arn, "chromium", nil)
	pid := *tok.ParticipantId
	b.do(t, "open the page on the node that does not host the stage, and join",
		chromedp.Navigate(env.StageURL+"/?autojoin=1&token="+url.QueryEscape(*tok.Token)),
		chromedp.WaitVisible(chromedp.CSS("#leave")))
	rep := b.waitPage(t, "publishing and watching gopher through redirects", 30*time.Second, func(r pageReport) bool {
		return r.State == "publishing" && r.Remote[gopher].Frames > 10
	})
	if len(rep.Errors) > 0 {
		t.Errorf("the page reports errors: %q", rep.Errors)
	}
	if slices.Contains(env.Stage.ActiveStages(), stageIDOf(st)) {
		t.Error("the page's node hosts the stage too")
	}
	_, got := subscribeDecoded(t, env, st, pid) // through the page's node too
	testkit.WaitFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		if n, _, _, _, err := got.snapshot(); n < 10 && err == nil {
			return fmt.Errorf("still waiting for 10 decoded frames of the browser: %v", got)
		}
		return nil
	})
	if _, _, _, _, err := got.snapshot(); err != nil {
		t.Fatalf("decoding the browser published through a redirect: %v", err)
	}
	b.do(t, "leave", chromedp.Click(chromedp.CSS("#leave")))
	b.waitPage(t, "left", 10*time.Second, func(r pageReport) bool { return r.State == "left" })
}

func stageIDOf(st types.Stage) string { return (*st.Arn)[strings.LastIndex(*st.Arn, "/")+1:] }

// subscribeLayer subscribes to a publisher's layer from Go and decodes its
// video.
func subscribeLayer(t *testing.T, env *stagetest.Env, st types.Stage, publisherID, layer string) *decoded {
	t.Helper()
	tok := env.Token(t, *st.Arn, "go-viewer-"+layer, nil, types.ParticipantTokenCapabilitySubscribe)
	video := make(chan *webrtc.TrackRemote, 1)
	sub, err := client.Subscribe(env.Ctx, client.LayerURL(client.WHEPURL(*st.Endpoints.Whip, publisherID), layer),
		*tok.Token, loopback, func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				select {
				case video <- tr:
				default:
				}
			}
		})
	if err != nil {
		t.Fatalf("subscribe to %s: %v", publisherID, err)
	}
	d := &decoded{pictures: map[uint64]bool{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case tr := <-video:
			decode(tr, sub, d)
		case <-sub.Done():
		}
	})
	t.Cleanup(func() {
		_ = sub.Close(context.Background())
		wg.Wait()
	})
	return d
}

// TestBrowserSimulcast: the page with ?simulcast=1 publishes the camera
// as three layers, which reach the stage as one track with three layers;
// a Go subscriber asking for the low layer decodes a quarter of the
// picture the one asking for the high layer decodes. The page shows a Go
// simulcast publisher's tile with a layer chooser, whose choice switches
// the page's subscription.
func TestBrowserSimulcast(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Web: web.Handler()})
	b := startChromium(t)
	st := env.CreateStage(t, "browser-simulcast")
	tok := env.Token(t, *st.Arn, "chromium", nil)
	pid := *tok.ParticipantId
	b.do(t, "open the page with simulcast and join",
		chromedp.Navigate(env.StageURL+"/?simulcast=1&autojoin=1&token="+url.QueryEscape(*tok.Token)))
	b.waitPage(t, "three layers sent", 30*time.Second, func(r pageReport) bool {
		if r.Local == nil || len(r.Local.Layers) != 3 {
			return false
		}
		for _, l := range r.Local.Layers {
			if l.FramesSent == 0 {
				return false
			}
		}
		return true
	})
	// The stage's events describe the track's layers.
	ws := watchLayers(t, env, st, pid)
	if len(ws) != 3 || ws[0].RID != "q" || ws[2].RID != "f" {
		t.Fatalf("the stage's layers of the browser's video: %+v, want q, h, f", ws)
	}
	low, high := subscribeLayer(t, env, st, pid, "low"), subscribeLayer(t, env, st, pid, "high")
	for _, d := range []*decoded{low, high} {
		testkit.WaitFor(t, 20*time.Second, 50*time.Millisecond, func() error {
			if n, _, _, _, err := d.snapshot(); n < 10 && err == nil {
				return fmt.Errorf("still waiting for 10 decoded frames: %v", d)
			}
			return nil
		})
	}
	_, lw, lh, _, lerr := low.snapshot()
	_, hw, hh, _, herr := high.snapshot()
	if lerr != nil || herr != nil {
		t.Fatalf("decoding: low %v, high %v", lerr, herr)
	}
	t.Logf("browser simulcast: low %dx%d, high %dx%d", lw, lh, hw, hh)
	if lw*4 > hw || lh*4 > hh+4 || hw < 640 {
		t.Errorf("low layer %dx%d, high %dx%d: want the low a quarter of the high", lw, lh, hw, hh)
	}

	// A Go simulcast publisher: the page shows it at the top layer, and
	// its tile's chooser switches it to the low one.
	gtok := env.Token(t, *st.Arn, "go-layers", nil, types.ParticipantTokenCapabilityPublish)
	env.PublishSimulcastSynth(t, st, gtok, synth.SimulcastLayers(synth.Config{Width: 640, Height: 360, FPS: 15,
		VideoBitrate: 600_000}), client.PublishOptions{NoAudio: true})
	gid := *gtok.ParticipantId
	shown := func(w int) func(pageReport) bool {
		return func(r pageReport) bool { return r.Remote[gid].Width == w }
	}
	b.waitPage(t, "the Go publisher's top layer", 20*time.Second, shown(640))
	b.do(t, "find the layer chooser", chromedp.WaitVisible(chromedp.CSS("select.layer")))
	eval[bool](t, b, `(() => { const s = document.querySelector('select.layer'); s.value = 'low';
		return s.dispatchEvent(new Event('change')); })()`)
	rep := b.waitPage(t, "the Go publisher's low layer", 20*time.Second, shown(160))
	if len(rep.Errors) > 0 {
		t.Errorf("page errors: %q", rep.Errors)
	}
}

// watchLayers returns the layers the events channel gives the video track
// of publisher pid, once its sizes are known.
func watchLayers(t *testing.T, env *stagetest.Env, st types.Stage, pid string) []stage.LayerInfo {
	t.Helper()
	tok := env.Token(t, *st.Arn, "layer-watcher", nil, types.ParticipantTokenCapabilitySubscribe)
	var layers []stage.LayerInfo
	testkit.WaitFor(t, 15*time.Second, 200*time.Millisecond, func() error {
		ev, err := client.DialEvents(env.Ctx, *st.Endpoints.Events, *tok.Token)
		if err != nil {
			return err
		}
		defer ev.Close()
		m, err := ev.Next(env.Ctx)
		if err != nil {
			return err
		}
		for _, p := range m.Participants {
			for _, tr := range p.Tracks {
				if p.ParticipantID == pid && tr.Kind == "video" {
					layers = tr.Layers
				}
			}
		}
		if len(layers) == 0 || layers[len(layers)-1].Width == 0 {
			return fmt.Errorf("the snapshot's layers of %s: %+v", pid, layers)
		}
		return nil
	})
	return layers
}
