// Package api is Stagehand's IVS Real-Time control plane: the REST-JSON API
// that the AWS CLI and SDKs call with --endpoint-url, wire-compatible with
// Amazon IVS Real-Time (operations, JSON members, defaults, pagination and
// error shapes as the aws-sdk-go-v2 ivsrealtime v1.30.0 client expects them).
//
// Every request is authenticated with SigV4 (service "ivs"), decoded,
// validated completely before anything changes, and answered with either the
// operation's output or an AWS error (HTTP status, x-amzn-ErrorType, and a
// body carrying both message and exceptionMessage). Resources live in
// package store; StartComposition hands the work to package jobs.
// Participant tokens are signed with the key package tokenstore keeps, and
// DisconnectParticipant and DeleteStage reach the stage servers as
// stagesignal messages on NATS.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stagehand-rt/stagehand/api/sigv4"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

// maxBody bounds a request body; the largest IVS request is far smaller.
const maxBody = 1 << 20

// Config is the API's behaviour; Validate checks it before the server runs.
type Config struct {
	Namespace ivs.Namespace
	// Endpoints are the stage endpoints GetStage returns (the same for
	// every stage, as IVS's global endpoints are).
	Endpoints ivs.StageEndpoints
	// Credentials maps each accepted access key id to its secret.
	Credentials map[string]string
	// NoAuth accepts unsigned requests: local demos only.
	NoAuth bool
	// Channels maps the channel ARNs compositions may send to onto RTMP(S)
	// ingest URLs (with the stream key).
	Channels map[string]string
	Logger   *slog.Logger
	Now      func() time.Time
}

// Validate reports a configuration the server cannot run with.
func (c Config) Validate() error {
	var errs []error
	if c.Namespace.Region == "" || c.Namespace.Account == "" {
		errs = append(errs, errors.New("region and account id are required"))
	}
	if len(c.Credentials) == 0 && !c.NoAuth {
		errs = append(errs,
			errors.New("no API credentials: give an access key id and secret, or turn authentication off for a local demo"))
	}
	for arn := range c.Channels {
		if a, err := ivs.ParseARN(arn); err != nil || a.Type != ivs.TypeChannel {
			errs = append(errs, fmt.Errorf("channel %q is not an IVS channel ARN", arn))
		}
	}
	return errors.Join(errs...)
}

// Jobs is the job queue the API submits compositions to.
type Jobs interface {
	Submit(ctx context.Context, job jobs.Job) error
	SignalStop(ctx context.Context, compositionARN string) error
}

// Server answers the IVS Real-Time API.
type Server struct {
	cfg     Config
	store   *store.Store
	jobs    Jobs
	nc      *nats.Conn
	signer  *token.Signer
	auth    *sigv4.Verifier
	log     *slog.Logger
	ops     map[string]operation
	metrics *metrics
}

// operation handles one decoded request body.
type operation func(ctx context.Context, r *http.Request, body []byte) (any, *Error)

// New returns a server over the store and job queue; nc carries the signals
// to stages (participant disconnects).
func New(ctx context.Context, cfg Config, st *store.Store, q Jobs, nc *nats.Conn) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	signer, err := tokenstore.LoadSigner(ctx, st, cfg.Namespace)
	if err != nil {
		return nil, fmt.Errorf("api: token signing key: %w", err)
	}
	s := &Server{cfg: cfg, store: st, jobs: q, nc: nc, signer: signer,
		log: cfg.Logger.With("component", "api"), metrics: newMetrics()}
	s.auth = &sigv4.Verifier{Service: "ivs", Region: cfg.Namespace.Region, Lookup: s.secret, Now: cfg.Now}
	s.ops = s.operations()
	return s, nil
}

func (s *Server) secret(accessKeyID string) (string, bool) {
	v, ok := s.cfg.Credentials[accessKeyID]
	return v, ok
}

// now is the server's clock at millisecond precision, as IVS reports times.
func (s *Server) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// ServeHTTP routes POST /<Operation> and /tags/{arn}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	setCommonHeaders(rec.Header())
	op, errResp := s.serve(rec, r)
	if errResp != nil {
		writeError(rec, errResp)
	}
	level := slog.LevelDebug
	if rec.status >= 500 {
		level = slog.LevelError
	} else if rec.status >= 400 {
		level = slog.LevelInfo
	}
	took := time.Since(start)
	s.observe(op, errResp, took.Seconds())
	attrs := []any{"op", op, "status", rec.status, "ms", took.Milliseconds()}
	if errResp != nil {
		attrs = append(attrs, "error", errResp.Code, "message", errResp.Message)
	}
	s.log.Log(r.Context(), level, "request", attrs...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) (opName string, e *Error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in request", "op", opName, "panic", p, "stack", string(debug.Stack()))
			e = internalError()
		}
	}()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return "", validationError("request body unreadable or larger than %d bytes", maxBody)
	}
	opName, handler, e := s.route(r)
	if e != nil {
		return opName, e
	}
	if e := browserRequest(r, body); e != nil {
		return opName, e
	}
	if !s.cfg.NoAuth {
		if err := s.auth.Verify(r, body); err != nil {
			return opName, authError(err)
		}
	}
	out, e := handler(r.Context(), r, body)
	if e != nil {
		return opName, e
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.log.Error("encode response", "op", opName, "error", err)
		return opName, internalError()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return opName, nil
}

// route finds the operation for a request. Tag operations carry the ARN as
// one percent-encoded path segment, so they are routed on the escaped path.
func (s *Server) route(r *http.Request) (string, operation, *Error) {
	path := r.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(path, "/tags/"); ok {
		arn, err := url.PathUnescape(rest)
		if err != nil || arn == "" || strings.Contains(rest, "/") {
			return "tags", nil, validationError("resource ARN in the path %q is not one percent-encoded segment", path)
		}
		switch r.Method {
		case http.MethodGet:
			return "ListTagsForResource", s.withARN(arn, s.listTagsForResource), nil
		case http.MethodPost:
			return "TagResource", s.withARN(arn, s.tagResource), nil
		case http.MethodDelete:
			return "UntagResource", s.withARN(arn, s.untagResource), nil
		}
		return "tags", nil, &Error{http.StatusMethodNotAllowed, "UnknownOperationException",
			r.Method + " is not allowed on /tags/{resourceArn}"}
	}
	name := strings.TrimPrefix(path, "/")
	op, ok := s.ops[name]
	if !ok || r.Method != http.MethodPost {
		return name, nil, &Error{http.StatusNotFound, "UnknownOperationException",
			fmt.Sprintf("%s %s is not an IVS Real-Time operation", r.Method, path)}
	}
	return name, op, nil
}

// browserRequest refuses what a page of another site can send without a
// CORS preflight: a body that is not JSON (text/plain, a form), or any
// request that says it comes from another origin. The SDKs and the CLI
// send application/json (or x-amz-json-1.1) and no Origin. With --no-auth
// this is all that stands between a browser and the operations.
func browserRequest(r *http.Request, body []byte) *Error {
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return &Error{http.StatusForbidden, "AccessDeniedException", "cross-origin requests are refused"}
		}
	}
	if len(body) == 0 {
		return nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" && mt != "application/x-amz-json-1.1" {
		return &Error{http.StatusUnsupportedMediaType, "ValidationException",
			"Content-Type must be application/json or application/x-amz-json-1.1"}
	}
	return nil
}

// authError maps a signature failure to its AWS error, all 403.
func authError(err error) *Error {
	var se *sigv4.Error
	if errors.As(err, &se) {
		return &Error{http.StatusForbidden, se.Code, se.Message}
	}
	return &Error{http.StatusForbidden, "AccessDeniedException", err.Error()}
}

// setCommonHeaders adds the headers IVS's front end puts on every response,
// but Access-Control-Allow-Origin: no other site's page may read answers.
func setCommonHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("x-amzn-RequestId",
		ivs.RandomString(8)+"-"+ivs.RandomString(4)+"-"+ivs.RandomString(4)+"-"+ivs.RandomString(4)+"-"+ivs.RandomString(12))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// handle adapts a typed operation: it decodes the JSON body into In (an
// empty body is an empty object) and returns Out.
func handle[In any, Out any](fn func(ctx context.Context, in *In) (*Out, *Error)) operation {
	return func(ctx context.Context, _ *http.Request, body []byte) (any, *Error) {
		in := new(In)
		if e := decode(body, in); e != nil {
			return nil, e
		}
		return fn(ctx, in)
	}
}

// decode reads a JSON request body. Unknown members are ignored, as AWS
// services do (newer clients send members older servers do not know).
func decode(body []byte, v any) *Error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return validationError("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must be "+
				"of type %s", te.Field, jsonType(te.Type.Kind().String()))
		}
		return validationError("request body is not valid JSON: %v", err)
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "map", "struct", "ptr":
		return "object"
	case "slice":
		return "list"
	}
	return "number"
}

// storeError maps a store failure: not found becomes the resource's 404,
// anything else a logged 500.
func (s *Server) storeError(err error, what string) *Error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound("%s not found", what)
	}
	s.log.Error("store", "resource", what, "error", err)
	return internalError()
}

// empty is the output of operations that return nothing.
type empty struct{}
