//go:build security

package securitytest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// post sends body to url with the headers in hdr (Host among them).
func post(t *testing.T, url, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// stages is how many stages the API lists, asked as the CLI asks.
func stages(t *testing.T, api string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, api+"/ListStages",
		strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ListStages: %d %s", resp.StatusCode, b)
	}
	return strings.Count(string(b), `"arn"`)
}

// TestCrossSiteRequests: against `serve --dev --no-auth` (where no
// signature stands in the way), what a page of another site can send
// without a CORS preflight reaches no operation, and no answer invites
// other origins to read it.
func TestCrossSiteRequests(t *testing.T) {
	s := startServe(t, "--dev", "--no-auth")
	api := "http://" + s.API
	if n := stages(t, api); n != 0 {
		t.Fatalf("%d stages before the attacks", n)
	}
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"text/plain cross-site POST", map[string]string{"Content-Type": "text/plain",
			"Origin": "https://attacker.example"}},
		{"text/plain POST without Origin", map[string]string{"Content-Type": "text/plain"}},
		{"form POST", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{"JSON POST from another origin", map[string]string{"Content-Type": "application/json",
			"Origin": "https://attacker.example"}},
	} {
		Attack(t, tc.name, func(t *testing.T) {
			resp := post(t, api+"/CreateStage", `{"name":"csrf"}`, tc.hdr)
			if resp.StatusCode == http.StatusOK {
				t.Errorf("CreateStage answered 200")
			}
			if o := resp.Header.Get("Access-Control-Allow-Origin"); o != "" {
				t.Errorf("Access-Control-Allow-Origin: %s", o)
			}
			if n := stages(t, api); n != 0 {
				t.Errorf("%d stages created", n)
			}
		})
	}
}

// TestDNSRebinding: a page whose DNS name was rebound to the server's
// address sends its own name as Host: the API and the stage refuse it.
func TestDNSRebinding(t *testing.T) {
	s := startServe(t, "--dev", "--no-auth")
	api := "http://" + s.API
	Attack(t, "rebound Host to the API", func(t *testing.T) {
		resp := post(t, api+"/CreateStage", `{"name":"rebound"}`,
			map[string]string{"Content-Type": "application/json", "Host": "rebound.attacker.example:8690"})
		if resp.StatusCode != http.StatusMisdirectedRequest && resp.StatusCode != http.StatusForbidden {
			t.Errorf("CreateStage with a foreign Host answered %d", resp.StatusCode)
		}
		if n := stages(t, api); n != 0 {
			t.Errorf("%d stages created", n)
		}
	})
	Attack(t, "rebound Host to the stage", func(t *testing.T) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+s.Stage+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "rebound.attacker.example"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(string(b), "<html") {
			t.Errorf("stage page with a foreign Host answered %d (%d bytes)", resp.StatusCode, len(b))
		}
	})
}

// TestNoAuthExposed: serve refuses to accept unsigned requests on an
// address other machines reach.
func TestNoAuthExposed(t *testing.T) {
	Attack(t, "--no-auth on 0.0.0.0", func(t *testing.T) {
		out, err := runServe(t, "--dev", "--no-auth", "--api-addr", "0.0.0.0:0", "--stage-addr", "127.0.0.1:0",
			"--nats-addr", "127.0.0.1:0", "--rtmp-addr", "", "--rtmps-addr", "", "--data-dir", t.TempDir())
		if err == nil || !strings.Contains(out, "loopback") {
			t.Errorf("serve --no-auth on 0.0.0.0: %v\n%s", err, out)
		}
		if strings.Contains(out, "API at") {
			t.Errorf("serve listened:\n%s", out)
		}
	})
}
