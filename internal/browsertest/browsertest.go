// Package browsertest runs a headless Chromium for tests, driven over the
// DevTools protocol through --remote-debugging-pipe (no port is opened),
// with the flags the stage's browser tests use: fake camera and
// microphone, no background networking, no throttling of a background
// tab. On failure the page's console and Chromium's output are logged.
package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// ChromiumPath is where scripts/deps.sh --test installs Chromium.
const ChromiumPath = "/usr/bin/chromium"

// Browser is one Chromium with one tab.
type Browser struct {
	Ctx context.Context // the tab

	mu      sync.Mutex
	console []string
	out     bytes.Buffer
}

func (b *Browser) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

// Start starts Chromium with a width×height window, stopped by t.Cleanup;
// the test is skipped when there is no Chromium.
func Start(t *testing.T, width, height int) *Browser {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Skipf("no Chromium at %s (install it with scripts/deps.sh --test): %v", ChromiumPath, err)
	}
	b := &Browser{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(width, height),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.CombinedOutput(b),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start %s: %v", ChromiumPath, err)
	}
	b.Ctx = ctx
	messages := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return // the browser closed
			}
			b.mu.Lock()
			b.console = append(b.console, m.String())
			b.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := chromedp.Cancel(cctx); err != nil {
			t.Logf("close Chromium: %v", err)
		}
		cancelAlloc()
		wg.Wait()
		if t.Failed() {
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Logf("page console:\n%s", strings.Join(b.console, "\n"))
			var out []string
			for line := range strings.Lines(b.out.String()) {
				if !strings.Contains(line, "dbus") {
					out = append(out, line)
				}
			}
			t.Logf("Chromium output:\n%s", strings.Join(out[max(0, len(out)-100):], ""))
		}
	})
	return b
}

// Do runs actions, failing the test after 15 s or on an error.
func (b *Browser) Do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](t *testing.T, b *Browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// EvalAsync evaluates a JavaScript expression whose value is a promise,
// and returns what it resolves to.
func EvalAsync[T any](t *testing.T, b *Browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitTrue polls expr, a JavaScript expression, until it is true.
func (b *Browser) WaitTrue(t *testing.T, what string, timeout time.Duration, expr string) {
	t.Helper()
	testkit.WaitFor(t, timeout, 100*time.Millisecond, func() error {
		if !Eval[bool](t, b, expr) {
			return fmt.Errorf("waiting for %s (%s)", what, expr)
		}
		return nil
	})
}

// Screenshot captures the whole page, past the viewport, as PNG.
func (b *Browser) Screenshot(t *testing.T) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return png
}
