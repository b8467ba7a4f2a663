package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// cookieName holds the session id; its path is /console/.
const cookieName = "stagehand_console"

// csrfHeader must be on every /console/api/ request: a page of another
// origin cannot send it without a CORS preflight, which is refused.
const csrfHeader = "X-Stagehand-Console"

// sessions are the signed-in browsers, by the SHA-256 of their cookie: the
// ids themselves are kept nowhere, and lookups compare digests.
type sessions struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu  sync.Mutex
	all map[[sha256.Size]byte]session
}

type session struct {
	key     string // the access key id signed in with, for the page
	created time.Time
	expires time.Time
}

func newSessions(ttl time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, max: max, now: now, all: map[[sha256.Size]byte]session{}}
}

// create starts a session and returns its id. When max sessions exist,
// expired ones go first, then the oldest.
func (s *sessions) create(accessKey string) string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge(now)
	for len(s.all) >= s.max {
		var oldest [sha256.Size]byte
		first := true
		for k, v := range s.all {
			if first || v.created.Before(s.all[oldest].created) {
				oldest, first = k, false
			}
		}
		delete(s.all, oldest)
	}
	s.all[sha256.Sum256([]byte(id))] = session{key: accessKey, created: now, expires: now.Add(s.ttl)}
	return id
}

func (s *sessions) purge(now time.Time) {
	for k, v := range s.all {
		if !now.Before(v.expires) {
			delete(s.all, k)
		}
	}
}

// lookup returns the live session of id.
func (s *sessions) lookup(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	h := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.all[h]
	if ok && !s.now().Before(v.expires) {
		delete(s.all, h)
		return session{}, false
	}
	return v, ok
}

func (s *sessions) end(id string) {
	h := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.all, h)
	s.mu.Unlock()
}

func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

// Failed sign-ins are bounded: past maxFailures within failWindow the
// console refuses every sign-in (429) until the window has passed, so that
// the key pair cannot be guessed at speed on the stage address, which
// participants reach. The API itself is not affected.
const (
	maxFailures = 20
	failWindow  = time.Minute
)

// failures counts recent failed sign-ins.
type failures struct {
	mu    sync.Mutex
	start time.Time
	n     int
}

// blocked reports whether sign-ins are refused at now.
func (f *failures) blocked(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.start) >= failWindow {
		f.start, f.n = now, 0
	}
	return f.n >= maxFailures
}

func (f *failures) add(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.start) >= failWindow {
		f.start, f.n = now, 0
	}
	f.n++
}

// checkCredentials compares a key pair with every configured one in
// constant time (no early exit on the key id either).
func checkCredentials(creds map[string]string, keyID, secret string) bool {
	ok := 0
	for k, v := range creds {
		ok |= subtle.ConstantTimeCompare([]byte(k), []byte(keyID)) & subtle.ConstantTimeCompare([]byte(v), []byte(secret))
	}
	return ok == 1 && keyID != ""
}

// sameOrigin refuses what a page of another site could send: a request
// without the console's header, or with an Origin other than the server's.
func sameOrigin(r *http.Request) (int, string) {
	if r.Header.Get(csrfHeader) == "" {
		return http.StatusForbidden, "missing the " + csrfHeader + " header (requests come from the console page)"
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return http.StatusForbidden, "cross-origin requests are refused"
		}
	}
	return 0, ""
}

// signedIn reports whether r carries a live session (always with NoAuth).
func (c *Console) signedIn(r *http.Request) (session, bool) {
	if c.cfg.NoAuth {
		return session{key: "(authentication off)"}, true
	}
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	return c.sessions.lookup(ck.Value)
}

type signInRequest struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

type sessionInfo struct {
	SignedIn  bool   `json:"signedIn"`
	NoAuth    bool   `json:"noAuth"`
	AccessKey string `json:"accessKeyId,omitempty"`
}

// handleSession: GET tells the page whether it is signed in, POST signs in,
// DELETE signs out.
func (c *Console) handleSession(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		s, ok := c.signedIn(r)
		writeJSON(w, http.StatusOK, sessionInfo{SignedIn: ok, NoAuth: c.cfg.NoAuth, AccessKey: s.key})
	case http.MethodPost:
		var in signInRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, "ValidationException", "want {\"accessKeyId\", \"secretAccessKey\"}")
			return
		}
		if c.cfg.NoAuth {
			writeJSON(w, http.StatusOK, sessionInfo{SignedIn: true, NoAuth: true})
			return
		}
		if c.failed.blocked(c.cfg.Now()) {
			writeError(w, http.StatusTooManyRequests, "ThrottlingException",
				"too many failed sign-ins: try again in a minute")
			return
		}
		if !checkCredentials(c.cfg.Credentials, in.AccessKeyID, in.SecretAccessKey) {
			c.failed.add(c.cfg.Now())
			c.log.Info("console sign-in refused", "accessKeyId", in.AccessKeyID, "remote", r.RemoteAddr)
			writeError(w, http.StatusUnauthorized, "UnrecognizedClientException",
				"the access key id or its secret is not one the API accepts")
			return
		}
		id := c.sessions.create(in.AccessKeyID)
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/console/", HttpOnly: true,
			Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.SessionTTL / time.Second)})
		c.log.Info("console sign-in", "accessKeyId", in.AccessKeyID, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, sessionInfo{SignedIn: true, AccessKey: in.AccessKeyID})
	case http.MethodDelete:
		if ck, err := r.Cookie(cookieName); err == nil {
			c.sessions.end(ck.Value)
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", HttpOnly: true,
			Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
		writeJSON(w, http.StatusOK, sessionInfo{NoAuth: c.cfg.NoAuth, SignedIn: c.cfg.NoAuth})
	default:
		writeError(w, http.StatusMethodNotAllowed, "UnknownOperationException", r.Method+" is not allowed here")
	}
}
