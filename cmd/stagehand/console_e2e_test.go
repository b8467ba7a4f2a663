package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/chromedp/chromedp"

	"github.com/stagehand-rt/stagehand/internal/browsertest"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
)

// shots writes the test's screenshots, numbered, into
// $STAGEHAND_CONSOLE_SHOTS (kept) or a temporary directory.
type shots struct {
	t   *testing.T
	b   *browsertest.Browser
	dir string
	n   int
}

func (s *shots) take(name string) {
	s.t.Helper()
	s.n++
	p := filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name))
	if err := os.WriteFile(p, s.b.Screenshot(s.t), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// jsText is a JavaScript expression for the text of the element with id.
func jsText(id string) string {
	return fmt.Sprintf("(document.getElementById(%q).textContent || '')", id)
}

// TestConsoleInBrowser drives the console of `serve --dev` in headless
// Chromium as an operator would: sign in (a wrong secret first), create a
// stage, watch a publisher's tile play, start a composition from the form
// (a value the API refuses first, with the API's message), watch it ACTIVE
// and its recording play, stop it, then the layout designer, the fleet
// and sign-out.
func TestConsoleInBrowser(t *testing.T) {
	start := time.Now()
	apiURL, _, out := startServeOutput(t, "--dev", "--api-addr", "127.0.0.1:0", "--stage-addr", "127.0.0.1:0",
		"--nats-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	m := regexp.MustCompile(`console at (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("serve printed no console URL:\n%s", out)
	}
	consoleURL := m[1]
	b := browsertest.Start(t, 1280, 900) // stops before serve: the page leaves first
	dir := os.Getenv("STAGEHAND_CONSOLE_SHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := &shots{t: t, b: b, dir: dir}

	// Sign in: a wrong secret is refused, the right one opens the stages.
	b.Do(t, "open the console", chromedp.Navigate(consoleURL), chromedp.WaitVisible(chromedp.CSS("#signin-key")))
	b.Do(t, "sign in with a wrong secret",
		chromedp.SendKeys(chromedp.CSS("#signin-key"), devAccessKeyID),
		chromedp.SendKeys(chromedp.CSS("#signin-secret"), "not-the-secret"),
		chromedp.Click(chromedp.CSS("#signin-submit")))
	b.WaitTrue(t, "the refusal", 10*time.Second, jsText("signin-error")+".includes('UnrecognizedClientException')")
	b.Do(t, "sign in", chromedp.Evaluate[chromedp.Void]("document.getElementById('signin-secret').value = ''"),
		chromedp.SendKeys(chromedp.CSS("#signin-secret"), devSecretAccessKey+"\r")) // Enter submits
	b.WaitTrue(t, "the stages view", 10*time.Second, "document.body.dataset.view === 'stages'")
	if got := browsertest.Eval[string](t, b, "document.cookie + JSON.stringify(localStorage) + "+
		"JSON.stringify(sessionStorage) + document.documentElement.outerHTML"); strings.Contains(got, devSecretAccessKey) ||
		strings.Contains(got, "stagehand_console=") {
		t.Errorf("the page can read the secret or the session cookie")
	}
	shot.take("signed-in")

	// Create a stage from the form; a publisher appears with a playing tile.
	b.Do(t, "create a stage", chromedp.SendKeys(chromedp.CSS("#stage-name"), "console-e2e"),
		chromedp.Click(chromedp.CSS("#stage-create-submit")))
	b.WaitTrue(t, "the stage view", 10*time.Second, "document.body.dataset.view === 'stage'")
	stageARN := browsertest.Eval[string](t, b, "decodeURIComponent(location.hash).slice('#stage/'.length)")
	api := sdkClient(apiURL, devAccessKeyID, devSecretAccessKey)
	publishSynth(t, api, stageARN, "alice", "tomato", map[string]string{"featured": "true"})
	publishSynth(t, api, stageARN, "bob", "teal", nil)
	b.WaitTrue(t, "both tiles playing", 30*time.Second, `(() => {
		const vs = [...document.querySelectorAll('#tiles video')];
		return vs.length === 2 && vs.every((v) => v.videoWidth > 0 && v.currentTime > 0.3); })()`)
	tileTime := browsertest.Eval[float64](t, b, "document.querySelector('#tiles video').currentTime")
	b.WaitTrue(t, "alice's tile advancing", 10*time.Second,
		fmt.Sprintf("document.querySelector('#tiles video').currentTime > %f + 0.5", tileTime))
	b.WaitTrue(t, "alice CONNECTED and published in the table, her events in the timeline", 10*time.Second,
		`[...document.querySelectorAll('#participants-table tbody tr')].some((r) =>
			r.textContent.includes('alice') && r.textContent.includes('CONNECTED') && r.textContent.includes('WHIP')) &&
		 document.getElementById('timeline').textContent.includes('PUBLISH_STARTED')`)
	t.Logf("tile playing after %v", time.Since(start).Round(time.Millisecond))
	shot.take("stage")
	// A token for one more participant, from the form.
	b.Do(t, "mint a token", chromedp.SendKeys(chromedp.CSS("#token-user"), "carol"),
		chromedp.SendKeys(chromedp.CSS("#token-attrs"), "role=guest"), chromedp.Click(chromedp.CSS("#token-submit")))
	b.WaitTrue(t, "the token and its join link", 10*time.Second,
		`document.getElementById('token-value').value.split('.').length === 3 &&
		 document.getElementById('token-join').href.includes('/?token=')`)
	claims := browsertest.Eval[map[string]any](t, b, `JSON.parse(atob(document.getElementById('token-value').value
		.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))`)
	if claims["user_id"] != "carol" || fmt.Sprint(claims["attributes"]) != "map[role:guest]" {
		t.Errorf("the minted token's claims %v; want user carol with role=guest", claims)
	}
	// On a phone: one column, nothing wider than the screen.
	b.Do(t, "a phone's viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	shot.take("stage-phone")
	b.WaitTrue(t, "no horizontal scrolling", 5*time.Second, "document.documentElement.scrollWidth <= 390")
	b.Do(t, "back to 1280 px", chromedp.EmulateViewport(1280, 900))

	// Start a composition from the form: the API's refusal first.
	// By keyboard: the navigation is links, the view's heading takes the focus.
	b.Do(t, "open the compositions with the keyboard", chromedp.Focus(chromedp.CSS(`nav a[data-tab="compositions"]`)),
		chromedp.KeyEvent("\r"))
	b.WaitTrue(t, "the compositions' heading focused", 10*time.Second,
		"document.body.dataset.view === 'compositions' && document.activeElement.textContent === 'Compositions' && "+
			"document.activeElement.tagName === 'H2'")
	b.WaitTrue(t, "the form's stages", 10*time.Second,
		fmt.Sprintf("[...document.getElementById('comp-stage').options].some((o) => o.value === %q)", stageARN))
	b.Do(t, "start a composition with a negative grid gap",
		chromedp.SetValue(chromedp.CSS("#comp-stage"), stageARN),
		chromedp.SetValue(chromedp.CSS("#comp-bucket"), "console-e2e"),
		chromedp.SetValue(chromedp.CSS("#comp-gap"), "-1"),
		chromedp.SetValue(chromedp.CSS("#comp-featured"), "featured"),
		chromedp.Click(chromedp.CSS("#comp-submit")))
	b.WaitTrue(t, "the API's ValidationException", 10*time.Second, jsText("comp-error")+
		`.includes("ValidationException: 1 validation error detected: Value at 'layout.grid.gridGap' failed to satisfy constraint")`)
	shot.take("composition-refused")
	b.Do(t, "start the composition", chromedp.SetValue(chromedp.CSS("#comp-gap"), "4"),
		chromedp.Click(chromedp.CSS("#comp-submit")))
	b.WaitTrue(t, "the composition ACTIVE", 30*time.Second,
		"document.body.dataset.view === 'composition' && document.body.dataset.composition === 'ACTIVE'")
	b.WaitTrue(t, "its recording playing", 60*time.Second,
		"(() => { const v = document.getElementById('rec-video'); return v.videoWidth > 0 && v.currentTime > 0.5; })()")
	recTime := browsertest.Eval[float64](t, b, "document.getElementById('rec-video').currentTime")
	b.WaitTrue(t, "the recording advancing", 20*time.Second,
		fmt.Sprintf("document.getElementById('rec-video').currentTime > %f + 1", recTime))
	b.WaitTrue(t, "the destination's counters", 10*time.Second,
		`(() => { const r = document.querySelector('#dests-table tbody tr');
			return !!r && r.textContent.includes('ACTIVE') && /MiB|KiB/.test(r.textContent); })()`)
	b.WaitTrue(t, "the latest thumbnail under the layout's boxes", 20*time.Second,
		`document.getElementById('thumb').naturalWidth > 0 && document.querySelectorAll('#thumb-box .box').length === 2`)
	t.Logf("recording playing after %v", time.Since(start).Round(time.Millisecond))
	shot.take("composition")
	b.Do(t, "stop it", chromedp.Click(chromedp.CSS("#comp-stop")))
	b.WaitTrue(t, "the composition STOPPED", 30*time.Second, "document.body.dataset.composition === 'STOPPED'")
	shot.take("composition-stopped")

	// Disconnect bob from the stage's page: his tile goes, his row says so.
	b.Do(t, "back to the stage", chromedp.Navigate(consoleURL+"#stage/"+stageARN))
	b.WaitTrue(t, "the stage's tiles", 20*time.Second, "document.querySelectorAll('#tiles video').length === 2")
	b.Do(t, "disconnect bob", chromedp.Click(chromedp.CSS(`#participants-table button[data-user="bob"]`)))
	b.WaitTrue(t, "bob DISCONNECTED, his tile gone", 20*time.Second,
		`document.querySelectorAll('#tiles video').length === 1 &&
		 [...document.querySelectorAll('#participants-table tbody tr')].some((r) =>
			r.textContent.includes('bob') && r.textContent.includes('DISCONNECTED'))`)

	// The layout designer previews a PiP; a bad knob shows the API's message.
	b.Do(t, "open the layout designer", chromedp.Click(chromedp.CSS(`nav a[data-tab="layout"]`)))
	b.WaitTrue(t, "a preview", 10*time.Second, "document.getElementById('d-preview').naturalWidth === 640")
	b.Do(t, "choose PiP", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('d-type');
		s.value = 'pip'; s.dispatchEvent(new Event('input', { bubbles: true })); })()`))
	b.WaitTrue(t, "the PiP JSON", 10*time.Second, `document.getElementById('d-json').value.includes('"pip"')`)
	b.Do(t, "a negative pipOffset", chromedp.SendKeys(chromedp.CSS("#d-pipoff"), "-5"))
	b.WaitTrue(t, "the designer's refusal", 10*time.Second, jsText("d-error")+".includes(\"'layout.pip.pipOffset'\")")
	shot.take("layout")

	// The fleet: the embedded worker, the queue, this stage node.
	b.Do(t, "open the fleet", chromedp.Click(chromedp.CSS(`nav a[data-tab="fleet"]`)))
	b.WaitTrue(t, "the worker and the node", 10*time.Second,
		`document.querySelector('#workers-table tbody').textContent.includes('this serve') &&
		 document.querySelectorAll('#nodes-table tbody tr').length === 1 && `+jsText("queue")+`.includes('waiting')`)
	shot.take("fleet")

	// Sign out: the session is gone for the page's requests too.
	b.Do(t, "sign out", chromedp.Click(chromedp.CSS("#signout")))
	b.WaitTrue(t, "the sign-in form", 10*time.Second, "document.body.dataset.view === 'signin'")
	status := browsertest.EvalAsync[float64](t, b, `fetch('/console/api/op/ListStages', {method: 'POST', body: '{}',
		headers: {'X-Stagehand-Console': '1'}}).then((r) => r.status)`)
	if status != 401 {
		t.Errorf("an operation after sign-out answered %v, want 401", status)
	}
	t.Logf("screenshots in %s; the test took %v", dir, time.Since(start).Round(time.Millisecond))
}

// publishSynth publishes a synthetic participant on the stage until the
// test ends.
func publishSynth(t *testing.T, api *rt.Client, stageARN, user, color string, attrs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tok, err := api.CreateParticipantToken(ctx, &rt.CreateParticipantTokenInput{StageArn: aws.String(stageARN),
		UserId: aws.String(user), Attributes: attrs})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st, err := api.GetStage(ctx, &rt.GetStageInput{Arn: aws.String(stageARN)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	src, err := synth.New(synth.Config{Width: 640, Height: 360, Color: color, Label: user})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pub, err := client.Publish(ctx, *st.Stage.Endpoints.Whip, *tok.ParticipantToken.Token, client.PublishOptions{
		Options: client.Options{ICEIPs: []string{"127.0.0.1"}}, OnKeyframeRequest: src.RequestKeyframe})
	if err != nil {
		cancel()
		src.Close()
		t.Fatalf("publish %s: %v", user, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = src.Run(ctx, pub.Video, pub.Audio) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		src.Close()
		_ = pub.Close(context.Background())
	})
}
