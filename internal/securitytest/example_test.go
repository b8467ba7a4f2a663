//go:build security

package securitytest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
)

// TestAPIRefusesUnsigned: an unsigned request to the API reaches no
// operation.
func TestAPIRefusesUnsigned(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	Attack(t, "unsigned CreateStage", func(t *testing.T) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, env.APIURL+"/CreateStage",
			strings.NewReader(`{"name":"intruder"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("unsigned CreateStage answered %d", resp.StatusCode)
		}
		keys, err := env.Store.Stages.Keys(env.Ctx, "")
		if err != nil || len(keys) != 0 {
			t.Errorf("stages after the attack: %v (%v); want none", keys, err)
		}
	})
}
