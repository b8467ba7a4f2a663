// Package hostguard refuses HTTP requests whose Host header names a host
// the server was not configured for. A web page that rebinds its own DNS
// name to the server's address (DNS rebinding) reaches the server only
// under that name, so it is refused with 421 Misdirected Request. IP
// literals and localhost are always accepted: a rebinding page cannot make
// a browser send them. It does not authenticate anything.
package hostguard

import (
	"net"
	"net/http"
	"strings"
)

// Guard holds the host names a server answers to.
type Guard struct {
	names map[string]bool
}

// New accepts names (host names, host:port, or URLs' hosts), case
// insensitively, besides IP literals and localhost.
func New(names ...string) *Guard {
	g := &Guard{names: map[string]bool{"localhost": true}}
	for _, n := range names {
		if h := hostOnly(n); h != "" {
			g.names[h] = true
		}
	}
	return g
}

// Allows reports whether a request whose Host header is host may be served.
func (g *Guard) Allows(host string) bool {
	h := hostOnly(host)
	if h == "" {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	return g.names[h]
}

// Handler serves h only to requests Allows.
func (g *Guard) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.Allows(r.Host) {
			http.Error(w, "misdirected request: this server does not answer to host "+r.Host+
				" (serve --allowed-hosts adds names)", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// hostOnly is host without its port and brackets, lower-cased, with no
// trailing dot ("Example.COM." and "example.com:443" are one name).
func hostOnly(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	s = strings.TrimSuffix(strings.Trim(s, "[]"), ".")
	return strings.ToLower(s)
}
