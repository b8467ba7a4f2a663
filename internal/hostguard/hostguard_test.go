package hostguard

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAllows(t *testing.T) {
	g := New("stage.example.com", "api.example.com:8690", "")
	for host, ok := range map[string]bool{
		"stage.example.com":       true,
		"STAGE.example.com.:443":  true,
		"api.example.com":         true,
		"localhost:8690":          true,
		"127.0.0.1:8690":          true,
		"[::1]:8690":              true,
		"10.0.0.5":                true,
		"attacker.example":        false,
		"attacker.example:8690":   false,
		"":                        false,
		"stage.example.com.evil":  false,
		"localhost.attacker.test": false,
	} {
		if got := g.Allows(host); got != ok {
			t.Errorf("Allows(%q) = %v; want %v", host, got, ok)
		}
	}
}

func TestHandler(t *testing.T) {
	reached := false
	h := New("ok.test").Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	r := httptest.NewRequest(http.MethodPost, "http://rebound.test:8690/CreateStage", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMisdirectedRequest || reached {
		t.Errorf("foreign host: %d, reached %v; want 421, not reached", w.Code, reached)
	}
	r = httptest.NewRequest(http.MethodPost, "http://ok.test/CreateStage", nil)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if !reached {
		t.Error("configured host not served")
	}
}
