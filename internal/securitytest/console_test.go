//go:build security

package securitytest

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// consoleHeader is the header every console call carries.
const consoleHeader = "X-Stagehand-Console"

// TestConsoleCrossSite: against `serve --dev --no-auth` on loopback,
// where the console needs no sign-in, what a page of another site can send
// reaches no operation through the console either.
func TestConsoleCrossSite(t *testing.T) {
	s := startServe(t, "--dev", "--no-auth")
	api, op := "http://"+s.API, "http://"+s.Stage+"/console/api/op/CreateStage"
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"console: text/plain cross-site POST", map[string]string{"Content-Type": "text/plain",
			"Origin": "https://attacker.example"}},
		{"console: form POST", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{"console: JSON POST with the header from another origin", map[string]string{
			"Content-Type": "application/json", consoleHeader: "1", "Origin": "https://attacker.example"}},
		{"console: rebound Host", map[string]string{"Content-Type": "application/json", consoleHeader: "1",
			"Host": "rebound.attacker.example:8691"}},
	} {
		Attack(t, tc.name, func(t *testing.T) {
			resp := post(t, op, `{"name":"csrf"}`, tc.hdr)
			if resp.StatusCode == http.StatusOK {
				t.Errorf("CreateStage through the console answered 200")
			}
			if o := resp.Header.Get("Access-Control-Allow-Origin"); o != "" {
				t.Errorf("Access-Control-Allow-Origin: %s", o)
			}
			if n := stages(t, api); n != 0 {
				t.Errorf("%d stages created", n)
			}
		})
	}
	Attack(t, "console: preflight for the console's header", func(t *testing.T) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodOptions, op, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "https://attacker.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-stagehand-console")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := resp.Header.Get("Access-Control-Allow-Headers"); strings.Contains(strings.ToLower(h), "x-stagehand-console") ||
			h == "*" {
			t.Errorf("the preflight allows the console's header: %q", h)
		}
	})
}

// TestConsoleSessions: against `serve --dev`, the console's session is
// neither forged nor guessed, and a signed-in operator reads no file
// outside the local buckets.
func TestConsoleSessions(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "stolen.m3u8"), []byte("#EXTM3U secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--dev", "--data-dir", data)
	base := "http://" + s.Stage + "/console"
	call := func(hc *http.Client, method, path, body string, cookie string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(consoleHeader, "1")
		req.Header.Set("Content-Type", "application/json")
		if cookie != "" {
			req.Header.Set("Cookie", "stagehand_console="+cookie)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	Attack(t, "console: forged session cookie", func(t *testing.T) {
		if code, body := call(http.DefaultClient, "POST", "/api/op/CreateStage", `{"name":"forged"}`,
			strings.Repeat("A", 43)); code != http.StatusUnauthorized {
			t.Errorf("CreateStage with a forged cookie: %d %s", code, body)
		}
	})
	Attack(t, "console: ../ out of the buckets", func(t *testing.T) {
		// Signed in as the operator.
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar}
		if code, body := call(hc, "POST", "/api/session",
			`{"accessKeyId":"AKIASTAGEHANDDEV","secretAccessKey":"stagehand-dev-secret"}`, ""); code != http.StatusOK {
			t.Fatalf("sign in: %d %s", code, body)
		}
		for _, p := range []string{"/rec/..%2fstolen.m3u8", "/rec/x/..%2f..%2fstolen.m3u8", "/rec/%2e%2e/stolen.m3u8",
			"/rec/x/%2e%2e/%2e%2e/stolen.m3u8"} {
			code, body := call(hc, "GET", p, "", "")
			if code == http.StatusOK || strings.Contains(body, "secret") {
				t.Errorf("GET %s: %d %q", p, code, body)
			}
		}
	})
	Attack(t, "console: guessing the secret", func(t *testing.T) {
		last := 0
		for range 25 {
			last, _ = call(http.DefaultClient, "POST", "/api/session",
				`{"accessKeyId":"AKIASTAGEHANDDEV","secretAccessKey":"guess"}`, "")
		}
		if last != http.StatusTooManyRequests {
			t.Errorf("the 25th wrong secret within a minute answered %d, want 429", last)
		}
		if code, _ := call(http.DefaultClient, "POST", "/api/session",
			`{"accessKeyId":"AKIASTAGEHANDDEV","secretAccessKey":"stagehand-dev-secret"}`, ""); code == http.StatusOK {
			t.Errorf("a sign-in went through during the lock-out")
		}
	})
}
