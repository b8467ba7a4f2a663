package console

import (
	"context"
	"encoding/json"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/api"
)

const (
	keyID  = "AKIACONSOLETEST"
	secret = "console-test-secret"
)

// fakeAPI answers operations from a table and records what it ran.
type fakeAPI struct {
	mu  sync.Mutex
	ran []string
	out map[string]string     // op → JSON output
	err map[string]*api.Error // op → error
}

func (f *fakeAPI) Invoke(_ context.Context, op string, body []byte) (json.RawMessage, *api.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, op+" "+string(body))
	if e := f.err[op]; e != nil {
		return nil, e
	}
	if o, ok := f.out[op]; ok {
		return json.RawMessage(o), nil
	}
	return json.RawMessage(`{}`), nil
}

type env struct {
	c   *Console
	api *fakeAPI
	now time.Time
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{api: &fakeAPI{out: map[string]string{}, err: map[string]*api.Error{}},
		now: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	cfg := Config{API: e.api, Credentials: map[string]string{keyID: secret}, BucketsDir: t.TempDir(),
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return e.now }}
	if mod != nil {
		mod(&cfg)
	}
	e.c = New(cfg)
	return e
}

// req is one request to the console, as a page of host 127.0.0.1:8691
// sends it unless told otherwise.
type req struct {
	method, path, body string
	cookie             string // session cookie value
	noHeader           bool   // leave out X-Stagehand-Console
	origin             string
}

func (e *env) do(t *testing.T, r req) *httptest.ResponseRecorder {
	t.Helper()
	hr := httptest.NewRequest(r.method, "http://127.0.0.1:8691"+r.path, strings.NewReader(r.body))
	if !r.noHeader {
		hr.Header.Set(csrfHeader, "1")
	}
	if r.origin != "" {
		hr.Header.Set("Origin", r.origin)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: cookieName, Value: r.cookie})
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	// As serve mounts it: the stage's CORS headers are set first.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	e.c.Handler(http.NotFoundHandler()).ServeHTTP(w, hr)
	return w
}

func (e *env) signIn(t *testing.T) string {
	t.Helper()
	w := e.do(t, req{method: "POST", path: "/console/api/session",
		body: `{"accessKeyId":"` + keyID + `","secretAccessKey":"` + secret + `"}`})
	if w.Code != 200 {
		t.Fatalf("sign in: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName {
			return c.Value
		}
	}
	t.Fatal("sign in set no cookie")
	return ""
}

func TestSignIn(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		secure     bool
		want       int
	}{
		{"right pair", `{"accessKeyId":"` + keyID + `","secretAccessKey":"` + secret + `"}`, false, 200},
		{"right pair over TLS", `{"accessKeyId":"` + keyID + `","secretAccessKey":"` + secret + `"}`, true, 200},
		{"wrong secret", `{"accessKeyId":"` + keyID + `","secretAccessKey":"nope"}`, false, 401},
		{"secret of another key", `{"accessKeyId":"AKIAOTHER","secretAccessKey":"` + secret + `"}`, false, 401},
		{"empty pair", `{"accessKeyId":"","secretAccessKey":""}`, false, 401},
		{"not JSON", `accessKeyId=x`, false, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Secure = tc.secure })
			w := e.do(t, req{method: "POST", path: "/console/api/session", body: tc.body})
			if w.Code != tc.want {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tc.want)
			}
			if strings.Contains(w.Body.String(), secret) {
				t.Errorf("the answer carries the secret: %s", w.Body)
			}
			cookies := w.Result().Cookies()
			if tc.want != 200 {
				if len(cookies) != 0 || e.c.sessions.count() != 0 {
					t.Errorf("a refused sign-in made a session: %v", cookies)
				}
				return
			}
			if len(cookies) != 1 {
				t.Fatalf("cookies %v, want one", cookies)
			}
			c := cookies[0]
			if c.Name != cookieName || len(c.Value) < 40 || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode ||
				c.Path != "/console/" || c.Secure != tc.secure || c.MaxAge != 12*3600 || strings.Contains(c.Value, secret) {
				t.Errorf("cookie %+v: want a random HttpOnly SameSite=Strict /console/ cookie, Secure %v, 12 h", c, tc.secure)
			}
			if got := e.do(t, req{method: "GET", path: "/console/api/session", cookie: c.Value}); !strings.Contains(got.Body.String(), `"signedIn":true`) {
				t.Errorf("session after sign-in: %s", got.Body)
			}
		})
	}
}

// TestAttacks: what a browser without a session, with a forged one, or a
// page of another site can and cannot do.
func TestAttacks(t *testing.T) {
	e := newEnv(t, nil)
	good := e.signIn(t)
	forged := strings.Repeat("A", len(good))
	for _, tc := range []struct {
		name string
		r    req
		want int
	}{
		{"no session: operation", req{method: "POST", path: "/console/api/op/ListStages", body: "{}"}, 401},
		{"no session: fleet", req{method: "GET", path: "/console/api/fleet"}, 401},
		{"no session: recordings", req{method: "GET", path: "/console/api/recordings?arn=x"}, 401},
		{"no session: preview", req{method: "POST", path: "/console/api/layout/preview", body: "{}"}, 401},
		{"no session: recording file", req{method: "GET", path: "/console/rec/b/k/playlist.m3u8"}, 401},
		{"forged cookie: operation", req{method: "POST", path: "/console/api/op/ListStages", body: "{}", cookie: forged}, 401},
		{"forged cookie: recording file", req{method: "GET", path: "/console/rec/b/k/playlist.m3u8", cookie: forged}, 401},
		{"cross-origin POST with the session", req{method: "POST", path: "/console/api/op/CreateStage", body: "{}",
			cookie: good, origin: "https://evil.example"}, 403},
		{"cross-origin sign-in", req{method: "POST", path: "/console/api/session", origin: "http://evil.example",
			body: `{"accessKeyId":"` + keyID + `","secretAccessKey":"` + secret + `"}`}, 403},
		{"form POST without the header", req{method: "POST", path: "/console/api/op/CreateStage", body: "{}", cookie: good,
			noHeader: true}, 403},
		{"sign-out without the header", req{method: "DELETE", path: "/console/api/session", cookie: good, noHeader: true}, 403},
		{"operation off the allowlist", req{method: "POST", path: "/console/api/op/DeleteStage", body: "{}", cookie: good}, 404},
		{"GET of an operation", req{method: "GET", path: "/console/api/op/ListStages", cookie: good}, 404},
		{"same origin with the session", req{method: "POST", path: "/console/api/op/ListStages", body: "{}", cookie: good,
			origin: "http://127.0.0.1:8691"}, 200},
		{"page without a session", req{method: "GET", path: "/console/", noHeader: true}, 200},
		{"page POST", req{method: "POST", path: "/console/", noHeader: true}, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(t, tc.r)
			if w.Code != tc.want {
				t.Errorf("status %d (%s), want %d", w.Code, w.Body, tc.want)
			}
			if h := w.Header(); h.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("headers %v: want no CORS and the CSP", h)
			}
		})
	}
	e.api.mu.Lock()
	defer e.api.mu.Unlock()
	if len(e.api.ran) != 1 || !strings.HasPrefix(e.api.ran[0], "ListStages") {
		t.Errorf("the API ran %q; want only the same-origin ListStages", e.api.ran)
	}
}

func TestSignOut(t *testing.T) {
	e := newEnv(t, nil)
	id := e.signIn(t)
	w := e.do(t, req{method: "DELETE", path: "/console/api/session", cookie: id})
	if w.Code != 200 || len(w.Result().Cookies()) != 1 || w.Result().Cookies()[0].MaxAge >= 0 {
		t.Fatalf("sign out: %d %v", w.Code, w.Result().Cookies())
	}
	if w := e.do(t, req{method: "POST", path: "/console/api/op/ListStages", body: "{}", cookie: id}); w.Code != 401 {
		t.Errorf("the session after sign-out: %d", w.Code)
	}
}

func TestSessions(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newSessions(time.Hour, 2, func() time.Time { return now })
	a := s.create("k")
	now = now.Add(time.Second)
	b := s.create("k")
	if a == b {
		t.Fatal("two sessions with one id")
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		create  bool // one more session first
		id      string
		want    bool
	}{
		{"live", 0, false, a, true},
		{"unknown", 0, false, "nope", false},
		{"empty", 0, false, "", false},
		{"the oldest goes past the bound", 0, true, a, false},
		{"the newer stays", 0, false, b, true},
		{"expired", time.Hour, false, b, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now = now.Add(tc.advance)
			if tc.create {
				now = now.Add(time.Second)
				s.create("k")
			}
			if _, ok := s.lookup(tc.id); ok != tc.want {
				t.Errorf("lookup = %v, want %v", ok, tc.want)
			}
			if n := s.count(); n > 2 {
				t.Errorf("%d sessions kept, bound 2", n)
			}
		})
	}
}

func TestNoAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.NoAuth = true; c.Credentials = nil })
	if w := e.do(t, req{method: "POST", path: "/console/api/op/ListStages", body: "{}"}); w.Code != 200 {
		t.Errorf("no-auth operation: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, req{method: "POST", path: "/console/api/op/ListStages", body: "{}", noHeader: true}); w.Code != 403 {
		t.Errorf("no-auth operation without the header: %d, want 403", w.Code)
	}
	if w := e.do(t, req{method: "GET", path: "/console/api/session"}); !strings.Contains(w.Body.String(), `"noAuth":true`) {
		t.Errorf("session: %s", w.Body)
	}
}

func TestOperations(t *testing.T) {
	e := newEnv(t, nil)
	id := e.signIn(t)
	e.api.out["ListStages"] = `{"stages":[]}`
	e.api.err["StartComposition"] = &api.Error{Status: 400, Code: "ValidationException",
		Message: "1 validation error detected: Value at 'layout.grid.gridGap' failed to satisfy constraint: -1 is negative; minimum is 0"}
	for _, tc := range []struct {
		op, body string
		status   int
		want     string
	}{
		{"ListStages", "{}", 200, `{"stages":[]}`},
		{"StartComposition", `{"layout":{"grid":{"gridGap":-1}}}`, 400,
			`{"code":"ValidationException","message":"1 validation error detected: Value at 'layout.grid.gridGap' failed to satisfy constraint: -1 is negative; minimum is 0"}`},
		{"TagResource", "{}", 404, `"code":"UnknownOperationException"`},
	} {
		t.Run(tc.op, func(t *testing.T) {
			w := e.do(t, req{method: "POST", path: "/console/api/op/" + tc.op, body: tc.body, cookie: id})
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("%d %s, want %d %s", w.Code, w.Body, tc.status, tc.want)
			}
		})
	}
}

func TestPreview(t *testing.T) {
	e := newEnv(t, nil)
	id := e.signIn(t)
	for _, tc := range []struct {
		name, query, body string
		status            int
		want              string // in the body, or the content type
	}{
		{"grid", "", `{"layout":{"grid":{}},"participants":[{},{}],"width":320,"height":180}`, 200, "image/png"},
		{"geometry", "?format=json", `{"layout":{"pip":{}},"participants":[{},{}],"width":320,"height":180}`, 200, `"tiles":[`},
		{"the API's message", "", `{"layout":{"pip":{"pipOffset":-1}}}`, 400,
			"1 validation error detected: Value at 'layout.pip.pipOffset' failed to satisfy constraint"},
		{"both kinds", "", `{"layout":{"grid":{},"pip":{}}}`, 400, "exactly one of grid or pip"},
		{"odd size", "", `{"layout":{"grid":{}},"width":321,"height":180}`, 400, "even"},
		{"too many", "", `{"participants":[{},{},{},{},{},{},{},{},{},{},{},{},{}]}`, 400, "at most 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(t, req{method: "POST", path: "/console/api/layout/preview" + tc.query, body: tc.body, cookie: id})
			if w.Code != tc.status {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tc.status)
			}
			if tc.want == "image/png" {
				img, err := png.Decode(w.Body)
				if err != nil || img.Bounds().Dx() != 320 {
					t.Errorf("not a 320-wide PNG: %v", err)
				}
				return
			}
			if !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("body %s, want %q in it", w.Body, tc.want)
			}
		})
	}
}

func TestRecordingFiles(t *testing.T) {
	e := newEnv(t, nil)
	id := e.signIn(t)
	dir := filepath.Join(e.c.cfg.BucketsDir, "rec", "st", "comp", "media", "hls", "720p30")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "playlist.m3u8"), []byte("#EXTM3U\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.c.cfg.BucketsDir, "secret.m3u8"), []byte("no"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		status     int
		ctype      string
	}{
		{"playlist", "/console/rec/rec/st/comp/media/hls/720p30/playlist.m3u8", 200, "application/vnd.apple.mpegurl"},
		{"missing segment", "/console/rec/rec/st/comp/media/hls/720p30/9.ts", 404, ""},
		{"another kind of file", "/console/rec/rec/st/comp/media/hls/720p30/playlist.txt", 404, ""},
		{"dot-dot", "/console/rec/rec/%2e%2e/secret.m3u8", 400, ""},
		{"dot-dot in the key", "/console/rec/rec/st/..%2f..%2fsecret.m3u8", 400, ""},
		{"a directory", "/console/rec/rec/st.m3u8", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(t, req{method: "GET", path: tc.path, cookie: id, noHeader: true})
			if w.Code != tc.status || tc.ctype != "" && w.Header().Get("Content-Type") != tc.ctype {
				body, _ := io.ReadAll(w.Body)
				t.Errorf("%d %q (%s), want %d %q", w.Code, w.Header().Get("Content-Type"), body, tc.status, tc.ctype)
			}
		})
	}
}

func TestRecordingsFindsThePlaylist(t *testing.T) {
	e := newEnv(t, nil)
	id := e.signIn(t)
	e.api.out["GetComposition"] = `{"composition":{"arn":"arn:c","destinations":[{"id":"d1","state":"ACTIVE",
		"configuration":{"s3":{"storageConfigurationArn":"arn:s"}},"detail":{"s3":{"recordingPrefix":"st/c/d1/composite"}}}]}}`
	e.api.out["GetStorageConfiguration"] = `{"storageConfiguration":{"arn":"arn:s","s3":{"bucketName":"b"}}}`
	dir := filepath.Join(e.c.cfg.BucketsDir, "b", "st", "c", "d1", "composite", "media", "hls")
	if err := os.MkdirAll(filepath.Join(dir, "720p30"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"multivariant.m3u8": "#EXTM3U\n", "720p30/0.ts": "12345", "720p30/1.ts": "123"} {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := e.do(t, req{method: "GET", path: "/console/api/recordings?arn=arn:c", cookie: id})
	want := `{"recordings":[{"destination":"d1","bucket":"b","prefix":"st/c/d1/composite",` +
		`"playlist":"/console/rec/b/st/c/d1/composite/media/hls/multivariant.m3u8",` +
		`"renditions":[{"name":"720p30","segments":2,"bytes":8}],"source":"local"}]}`
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != want {
		t.Errorf("%d %s\nwant %s", w.Code, w.Body, want)
	}
}

func TestFailedSignInsAreBounded(t *testing.T) {
	e := newEnv(t, nil)
	bad := `{"accessKeyId":"` + keyID + `","secretAccessKey":"guess"}`
	good := `{"accessKeyId":"` + keyID + `","secretAccessKey":"` + secret + `"}`
	for range maxFailures {
		if w := e.do(t, req{method: "POST", path: "/console/api/session", body: bad}); w.Code != 401 {
			t.Fatalf("a wrong secret: %d", w.Code)
		}
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		body    string
		want    int
	}{
		{"one more guess", 0, bad, 429},
		{"even the right pair, within the minute", 30 * time.Second, good, 429},
		{"the right pair a minute later", 30 * time.Second, good, 200},
	} {
		e.now = e.now.Add(tc.advance)
		if w := e.do(t, req{method: "POST", path: "/console/api/session", body: tc.body}); w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
	}
}
