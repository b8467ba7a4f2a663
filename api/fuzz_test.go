package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
)

// FuzzRequest sends arbitrary bodies to every operation: the server never
// panics, never answers 5xx, and every refusal is in the AWS error shape.
func FuzzRequest(f *testing.F) {
	e := newEnv(f)
	e.srv.cfg.NoAuth = true
	var ops []string
	for name := range e.srv.ops {
		ops = append(ops, name)
	}
	sort.Strings(ops)
	seeds := []string{
		`{}`, `null`, `[]`, `{"arn":"arn:aws:ivs:us-east-1:123456789012:stage/abcdABCDefgh"}`,
		`{"video":{"width":1920,"height":1080,"framerate":60,"bitrate":8500000}}`,
		`{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/x","destinations":[{"s3":{}}],"layout":{"grid":{"gridGap":-1}}}`,
		`{"layout":{"pip":{"pipWidth":1e30}}}`, `{"maxResults":0,"nextToken":"%%%"}`,
		`{"ingestProtocol":"RTMP","insecureIngest":true,"attributes":{"a":"b"}}`,
		`{"publicKeyMaterial":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}`,
		`{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/x","sessionId":"st-a1b2c3d4e5f6g","participantId":""}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := ops[int(op)%len(ops)]
		r := httptest.NewRequest(http.MethodPost, "/"+name, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", name, body, w.Code, w.Body)
		}
		if w.Code != 200 && w.Header().Get("x-amzn-ErrorType") == "" {
			t.Fatalf("%s %q: %d without x-amzn-ErrorType", name, body, w.Code)
		}
	})
}
