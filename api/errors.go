package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Error is an error in the AWS wire shape: an HTTP status, the error code
// clients read from x-amzn-ErrorType, and a message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The modeled errors of the IVS Real-Time API.
func validationError(format string, a ...any) *Error {
	return &Error{http.StatusBadRequest, "ValidationException", fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) *Error {
	return &Error{http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf(format, a...)}
}

func conflict(format string, a ...any) *Error {
	return &Error{http.StatusConflict, "ConflictException", fmt.Sprintf(format, a...)}
}

func quotaExceeded(format string, a ...any) *Error {
	// IVS models this one as 402.
	return &Error{http.StatusPaymentRequired, "ServiceQuotaExceededException", fmt.Sprintf(format, a...)}
}

func internalError() *Error {
	return &Error{http.StatusInternalServerError, "InternalServerException",
		"an internal error occurred; the server log has the details"}
}

// errorBody carries the message twice: the Go SDK reads exceptionMessage,
// the AWS CLI and the JavaScript SDK read message.
type errorBody struct {
	Type             string `json:"__type"`
	Message          string `json:"message"`
	ExceptionMessage string `json:"exceptionMessage"`
}

func writeError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", e.Code)
	h.Set("x-amzn-ErrorMessage", headerSafe(e.Message))
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(errorBody{Type: e.Code, Message: e.Message, ExceptionMessage: e.Message})
}

// headerSafe keeps a message printable ASCII on one line.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, s)
}

// violations collects a request's validation failures, so that one response
// names every bad member, as AWS does.
type violations []string

func (v *violations) add(field string, value any, constraint string) {
	*v = append(*v, fmt.Sprintf("Value '%v' at '%s' failed to satisfy constraint: %s", value, field, constraint))
}

func (v *violations) addf(format string, a ...any) {
	*v = append(*v, fmt.Sprintf(format, a...))
}

func (v violations) err() *Error {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return validationError("1 validation error detected: %s", v[0])
	default:
		return validationError("%d validation errors detected: %s", len(v), strings.Join(v, "; "))
	}
}
