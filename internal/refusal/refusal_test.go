package refusal

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestError(t *testing.T) {
	err := fmt.Errorf("stage refused: %d %w", http.StatusNotFound, Newf(http.StatusNotFound, "participant %q is gone", "p1"))
	if got, want := err.Error(), `stage refused: 404 participant "p1" is gone`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var r *Error
	if !errors.As(err, &r) || r.Status != http.StatusNotFound || r.Code != "" {
		t.Errorf("errors.As through a wrap found %+v", r)
	}
}
