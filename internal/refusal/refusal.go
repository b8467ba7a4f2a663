// Package refusal holds the one shape of a request the stage refuses: an
// HTTP status, an optional IVS event error code and a message for the
// client. The stage server builds it and the stage client reads it back,
// so it is a leaf with no dependencies.
package refusal

import "fmt"

// Error is a refused request. Code, when set, is the IVS error code the
// refusal is recorded under in the stage's events (e.g. QUOTA_EXCEEDED).
type Error struct {
	Status  int
	Code    string
	Message string
}

// New refuses with status (one of net/http's Status constants) and msg.
func New(status int, msg string) *Error { return &Error{Status: status, Message: msg} }

// Newf refuses with status and a message formatted as by fmt.Sprintf.
func Newf(status int, format string, args ...any) *Error {
	return New(status, fmt.Sprintf(format, args...))
}

// Error is the message alone: it is what the client is sent.
func (e *Error) Error() string { return e.Message }
