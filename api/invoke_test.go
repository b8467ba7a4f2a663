package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
)

// TestInvoke: an operation run in process answers what the same request
// over HTTP answers, refusals included, word for word.
func TestInvoke(t *testing.T) {
	e := newEnv(t)
	st, err := e.client.CreateStage(e.ctx, &ivsrealtime.CreateStageInput{Name: aws.String("invoke")})
	if err != nil {
		t.Fatal(err)
	}
	badLayout := `{"stageArn":"` + *st.Stage.Arn + `","layout":{"grid":{"gridGap":-1}},"destinations":[]}`
	for _, tc := range []struct {
		name, op, body string
		code, want     string
	}{
		{"get", "GetStage", `{"arn":"` + *st.Stage.Arn + `"}`, "", `"name":"invoke"`},
		{"validation", "StartComposition", badLayout, "ValidationException",
			"Value at 'layout.grid.gridGap' failed to satisfy constraint: -1 is negative; minimum is 0"},
		{"not found", "GetStage", `{"arn":"arn:aws:ivs:us-east-1:123456789012:stage/abcdefghijkl"}`,
			"ResourceNotFoundException", ""},
		{"bad JSON", "CreateStage", `{"name":`, "ValidationException", "request body is not valid JSON"},
		{"unknown operation", "DeleteEverything", `{}`, "UnknownOperationException", "DeleteEverything"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, apiErr := e.srv.Invoke(e.ctx, tc.op, []byte(tc.body))
			if tc.code == "" {
				if apiErr != nil || !strings.Contains(string(out), tc.want) || !json.Valid(out) {
					t.Fatalf("Invoke = %s, %v; want JSON with %s", out, apiErr, tc.want)
				}
				return
			}
			if apiErr == nil || apiErr.Code != tc.code || !strings.Contains(apiErr.Message, tc.want) {
				t.Fatalf("Invoke error %v, want %s with %q", apiErr, tc.code, tc.want)
			}
		})
	}
	// ValidateLayout says what StartComposition says of the layout.
	_, le := ValidateLayout(json.RawMessage(`{"grid":{"gridGap":-1}}`))
	_, ie := e.srv.Invoke(e.ctx, "StartComposition", []byte(badLayout))
	if le == nil || ie == nil || le.Code != ie.Code ||
		!strings.Contains(ie.Message, strings.TrimPrefix(le.Message, "1 validation error detected: ")) {
		t.Errorf("ValidateLayout %v, StartComposition %v: want the same words", le, ie)
	}
	if _, e := ValidateLayout(json.RawMessage(`{"pip":{"pipPosition":"TOP_LEFT"}}`)); e != nil {
		t.Errorf("ValidateLayout of a good layout: %v", e)
	}
}
