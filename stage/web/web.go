// Package web is the stage's browser page: a participant pastes a token (or
// opens the page with ?token=), joins, publishes camera and microphone over
// WHIP when the token may publish, and watches every other publisher over
// WHEP, following the stage's events channel. It is plain HTML and one
// JavaScript module embedded in the binary: no build step, nothing loaded
// from elsewhere.
//
// The page reports its state for users and tests alike: a status line,
// document.body.dataset.state ("idle", "joining", "connecting",
// "publishing", "watching" for a subscribe-only token, "reconnecting…",
// "leaving", "left", "error: …") and window.stagehand (state, publishing,
// local encoder stats, remote[participantId].frames decoded, errors,
// reconnects of the events channel, the publication and subscriptions).
//
// When the stage's node leaves (a reconnect message, the events channel
// closed with 1001 or 1012) or goes quiet (a connection failed, or
// disconnected for 2 s), the page reconnects each part by itself with the
// same token, 250 ms to 5 s apart, for at most a minute, keeping each
// publisher's tile.
//
// The package owns the page only; the endpoints it talks to are the stage
// server's (package stage), found in the token's whip_url and events_url
// claims. ?whip= and ?events= override them only when they name the page's
// own server: a link cannot send the token anywhere else.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// csp keeps the page to its own scripts and styles; connections go to
// whatever stage server the token names (WHIP, WHEP, events WebSocket).
const csp = "default-src 'self'; connect-src 'self' http: https: ws: wss:; img-src 'self' data:; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// Handler serves the page at / and its assets.
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // the URL may carry a token
		// Small and embedded: revalidate rather than serve a page older
		// than the server.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
