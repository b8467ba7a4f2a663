package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/smithy-go"
	"github.com/nats-io/nats.go"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/store"
)

const (
	testRegion  = "us-east-1"
	testAccount = "123456789012"
	testKeyID   = "AKIATESTSTAGEHAND"
	testSecret  = "test-secret"
	testChannel = "arn:aws:ivs:us-east-1:123456789012:channel/abcABCdefDEg"
)

// env is a running API on a real embedded JetStream, and a Go SDK client.
type env struct {
	t      testing.TB
	ctx    context.Context
	srv    *Server
	url    string
	client *ivsrealtime.Client
	store  *store.Store
	queue  *jobs.Queue
	nc     *nats.Conn
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	nc, js := testkit.JetStream(t)
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := jobs.Open(ctx, js, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := New(ctx, Config{
		Namespace:   ivs.Namespace{Region: testRegion, Account: testAccount},
		Endpoints:   ivs.StageEndpoints{Events: "ws://127.0.0.1:8691/events", WHIP: "http://127.0.0.1:8691/whip", RTMP: "rtmp://127.0.0.1:1935/app/", RTMPS: "rtmps://127.0.0.1:1936/app/"},
		Credentials: map[string]string{testKeyID: testSecret},
		Channels:    map[string]string{testChannel: "rtmp://127.0.0.1:1/app/key"},
		Logger:      logger,
	}, st, q, nc)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, ctx: ctx, srv: srv, url: hs.URL, client: newClient(hs.URL, testKeyID, testSecret), store: st, queue: q, nc: nc}
}

// newClient is the real AWS SDK client, signing with SigV4 for "ivs".
func newClient(url, keyID, secret string) *ivsrealtime.Client {
	return ivsrealtime.New(ivsrealtime.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// wantAPIError checks an SDK error's code and that its message mentions
// every fragment.
func wantAPIError(t *testing.T, err error, code string, fragments ...string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("code = %s (%v), want %s", ae.ErrorCode(), err, code)
	}
	msg := exceptionMessage(err)
	for _, f := range fragments {
		if !strings.Contains(msg, f) {
			t.Errorf("message %q does not mention %q", msg, f)
		}
	}
}

// exceptionMessage is the message the Go SDK exposes: the modeled
// exceptionMessage member of the typed error.
func exceptionMessage(err error) string {
	var (
		v  *types.ValidationException
		nf *types.ResourceNotFoundException
		cf *types.ConflictException
		ad *types.AccessDeniedException
		q  *types.ServiceQuotaExceededException
		is *types.InternalServerException
	)
	switch {
	case errors.As(err, &v):
		return aws.ToString(v.ExceptionMessage)
	case errors.As(err, &nf):
		return aws.ToString(nf.ExceptionMessage)
	case errors.As(err, &cf):
		return aws.ToString(cf.ExceptionMessage)
	case errors.As(err, &ad):
		return aws.ToString(ad.ExceptionMessage)
	case errors.As(err, &q):
		return aws.ToString(q.ExceptionMessage)
	case errors.As(err, &is):
		return aws.ToString(is.ExceptionMessage)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}
