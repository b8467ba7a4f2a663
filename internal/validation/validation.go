// Package validation holds the one shape every configuration check refuses
// with. It is a leaf (standard library only, no cgo) so that the pure layout
// engine and the cgo encoders can share it, and so that the API can map any
// of them to an AWS ValidationException by field.
package validation

import "fmt"

// Error names the setting that is refused and why. Field is the setting's
// path as its caller knows it (e.g. "layout.grid.gridGap", "video.width").
type Error struct {
	Field  string
	Reason string
}

// Errorf refuses field with a reason formatted as by fmt.Sprintf.
func Errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Error reads "field: reason"; a package adds its own prefix by wrapping.
func (e *Error) Error() string { return e.Field + ": " + e.Reason }
