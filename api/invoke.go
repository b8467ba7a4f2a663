package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/stagehand-rt/stagehand/layout"
)

// Invoke runs operation op ("CreateStage", "StartComposition", …) with a
// JSON request body for a caller this process has already authenticated
// (the console, after its own sign-in): no SigV4, but the same decoding,
// validation, errors and metrics as a request over HTTP. It returns the
// operation's JSON output or its AWS error. Tag operations, routed by path,
// are not offered.
func (s *Server) Invoke(ctx context.Context, op string, body []byte) (out json.RawMessage, e *Error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in request", "op", op, "panic", p, "stack", string(debug.Stack()))
			out, e = nil, internalError()
		}
		s.observe(op, e, time.Since(start).Seconds())
	}()
	handler, ok := s.ops[op]
	if !ok {
		return nil, &Error{http.StatusNotFound, "UnknownOperationException",
			fmt.Sprintf("%s is not an IVS Real-Time operation", op)}
	}
	if len(body) > maxBody {
		return nil, validationError("request body larger than %d bytes", maxBody)
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/"+op, http.NoBody)
	if err != nil {
		return nil, internalError()
	}
	v, e := handler(ctx, r, body)
	if e != nil {
		return nil, e
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode response", "op", op, "error", err)
		return nil, internalError()
	}
	return b, nil
}

// ValidateLayout reads a LayoutConfiguration ({"grid":{…}} or
// {"pip":{…}}) exactly as StartComposition does, with its
// ValidationException messages.
func ValidateLayout(raw json.RawMessage) (layout.Config, *Error) {
	var v violations
	var c layout.Config
	if raw != nil {
		m := json.RawMessage(raw)
		c = decodeLayout(&v, &m)
	}
	return c, v.err()
}
