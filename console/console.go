// Package console is Stagehand's operator console: a page served by
// `stagehand serve` at /console/ on the stage address, showing stages,
// participants (with a live tile per publisher), compositions and their
// recordings, a layout designer and the fleet. Plain HTML, CSS and one
// JavaScript module embedded in the binary, with hls.js (from npm,
// committed under static/) for recordings: nothing is loaded from
// elsewhere.
//
// Contract of the server side:
//
//   - Sign-in. POST /console/api/session with {accessKeyId,
//     secretAccessKey} is checked in constant time against the API's
//     credentials (Config.Credentials). Success sets a random 256-bit
//     session id in an HttpOnly, SameSite=Strict cookie (Secure over TLS)
//     for /console/; the server keeps its SHA-256, for SessionTTL, at most
//     MaxSessions (the oldest go first). The secret is neither kept nor
//     sent back. DELETE signs out; GET says whether the browser is signed
//     in. With NoAuth (serve --dev --no-auth) every browser is. Past 20
//     failed sign-ins in a minute, sign-in is refused (429) for the rest
//     of the minute.
//   - Every other /console/api/ and /console/rec/ request needs a session
//     (401 otherwise). Every /console/api/ request must carry the
//     X-Stagehand-Console header, and an Origin, if any, naming the
//     server itself (403 otherwise): a page of another site can send
//     neither without a CORS preflight, which the stage refuses for this
//     header.
//   - POST /console/api/op/{Operation} runs one IVS operation of an
//     allowlist in process through API.Invoke: the API's own validation
//     and messages; the answer is the operation's JSON, or {code, message}
//     with the API's status.
//   - GET /console/api/recordings?arn= tells where each S3 destination of
//     a composition records (playlist, latest thumbnail) and its counters;
//     GET /console/rec/{bucket}/{key...} serves playlists, segments and
//     thumbnails of the local buckets (Config.BucketsDir, through
//     internal/safepath) or of S3 (Config.S3, proxied).
//   - POST /console/api/layout/preview draws a layout as `stagehand layout
//     preview` does (PNG), after StartComposition's own layout validation.
//   - GET /console/api/fleet: workers, the job queue, stage nodes.
//
// The page polls what it shows every 2 s (the fleet every 3 s) and plays
// each publisher over WHEP with a SUBSCRIBE token it mints through
// CreateParticipantToken, as the join page does; the server pushes nothing.
//
// Files by role: console.go (config, routing, headers), session.go
// (sign-in, sessions, CSRF), ops.go (IVS operations), recordings.go and
// buckets.go (local or S3), preview.go, fleet.go; the page is static/.
package console

import (
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

//go:embed static
var static embed.FS

// csp keeps the page to its own scripts and styles. Connections may go to
// the stage server tokens name (WHEP); hls.js plays through blob: URLs.
const csp = "default-src 'self'; connect-src 'self' http: https: ws: wss:; img-src 'self' blob: data:; " +
	"media-src 'self' blob:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; " +
	"form-action 'self'"

// Config is what the console needs of serve.
type Config struct {
	// API runs IVS operations in process (an *api.Server).
	API API
	// Credentials are the API's key pairs: the console's sign-in accepts
	// the same ones.
	Credentials map[string]string
	// NoAuth: no sign-in (serve --dev --no-auth).
	NoAuth bool
	// Secure marks the cookie Secure: the page is served over HTTPS.
	Secure bool
	// BucketsDir holds the local buckets recordings are written to, S3
	// (when not nil) the S3 server workers upload them to instead; with
	// neither, recordings are not playable in the page.
	BucketsDir string
	S3         *s3.Client
	// Fleet reads the fleet's state; nil shows none.
	Fleet *Fleet
	// SessionTTL is how long a sign-in lasts; default 12 h.
	SessionTTL time.Duration
	// MaxSessions bounds the sessions kept; default 64.
	MaxSessions int
	Logger      *slog.Logger
	Now         func() time.Time
}

// Console serves the console.
type Console struct {
	cfg      Config
	sessions *sessions
	buckets  buckets // nil: none
	failed   failures
	log      *slog.Logger
	mux      *http.ServeMux
}

// New returns the console.
func New(cfg Config) *Console {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, log: cfg.Logger.With("component", "console"),
		sessions: newSessions(cfg.SessionTTL, cfg.MaxSessions, cfg.Now)}
	switch {
	case cfg.S3 != nil:
		c.buckets = s3Buckets{cfg.S3}
	case cfg.BucketsDir != "":
		c.buckets = localBuckets{cfg.BucketsDir}
	}
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/console/", http.FileServerFS(root))
	m := http.NewServeMux()
	m.HandleFunc("/console/api/session", c.api(false, c.handleSession))
	m.HandleFunc("POST /console/api/op/{op}", c.api(true, c.handleOp))
	m.HandleFunc("GET /console/api/recordings", c.api(true, c.handleRecordings))
	m.HandleFunc("POST /console/api/layout/preview", c.api(true, c.handlePreview))
	m.HandleFunc("GET /console/api/fleet", c.api(true, c.handleFleet))
	m.HandleFunc("/console/api/", c.api(true, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "UnknownOperationException", r.Method+" "+r.URL.Path+" is not a console endpoint")
	}))
	m.HandleFunc("GET /console/rec/{bucket}/{key...}", c.handleRecording)
	m.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
	})
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		files.ServeHTTP(w, r)
	})
	c.mux = m
	return c
}

// ServeHTTP serves /console and everything under /console/.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The stage server lets every origin read its responses (WHIP/WHEP);
	// not the console's.
	for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
		"Access-Control-Allow-Headers", "Access-Control-Expose-Headers"} {
		h.Del(k)
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
	c.mux.ServeHTTP(w, r)
}

// Handler serves the console at /console/ and passes every other path to
// next (the stage's join page).
func (c *Console) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/") {
			c.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// api wraps a /console/api/ handler: same-origin header check, then (when
// needSession) a live session.
func (c *Console) api(needSession bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if status, msg := sameOrigin(r); status != 0 {
			writeError(w, status, "AccessDeniedException", msg)
			return
		}
		if needSession {
			if _, ok := c.signedIn(r); !ok {
				writeError(w, http.StatusUnauthorized, "UnauthorizedException", "sign in first")
				return
			}
		}
		h(w, r)
	}
}

// errorBody is a console error: the API's code and message when it comes
// from an IVS operation.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
