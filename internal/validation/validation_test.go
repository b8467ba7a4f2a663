package validation

import (
	"errors"
	"fmt"
	"testing"
)

func TestError(t *testing.T) {
	err := fmt.Errorf("synth: %w", &Error{Field: "FPS", Reason: "99 is outside 1..60"})
	if got, want := err.Error(), "synth: FPS: 99 is outside 1..60"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var ve *Error
	if !errors.As(err, &ve) || ve.Field != "FPS" {
		t.Errorf("errors.As through a wrap found %+v", ve)
	}
}
