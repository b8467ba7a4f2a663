package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stagehand-rt/stagehand/stage/web"
)

// TestHandler: the page and its module are served with types a browser
// accepts for them, and nothing else is.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		path, ctype, contains string
		status                int
	}{
		{"/", "text/html", `<script type="module" src="app.js">`, 200},
		{"/?token=a.b.c&autojoin=1", "text/html", `id="join"`, 200},
		{"/app.js", "text/javascript", "window.stagehand", 200},
		{"/style.css", "text/css", "#tiles", 200},
		{"/nope.js", "text/plain", "404", 404},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s = %d %q, want %d %s containing %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.ctype, tc.contains)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
	}
}
