package ingest

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestNoKeyInErrors: what an encoder sends (a tcUrl that does not parse, a
// connect command the library quotes whole) never brings a stream key's
// secret into a log line.
func TestNoKeyInErrors(t *testing.T) {
	const secret = "s3cr3tPart"
	key := "rt_123456789012_us-east-1_abcdABCDefgh_" + secret
	_, parseErr := url.Parse("rtmp://[::1/app/" + key)
	for _, err := range []error{
		parseErr,
		fmt.Errorf("invalid connect command: %+v", map[string]string{"tcUrl": "rtmp://h/app/" + key}),
		errors.New("unexpected command: &{Name:publish Arguments:[<nil> " + key + "]}"),
	} {
		got := connectError(err).Error()
		if strings.Contains(got, secret) {
			t.Errorf("connectError(%q) = %q: the secret is in it", err, got)
		}
	}
	for _, s := range []string{key, "app/" + key + "/x", "tcUrl=rtmp://h/app/" + key + "?a=b", `"` + key + `"`} {
		if got := scrub(s); strings.Contains(got, secret) || !strings.Contains(got, "rt_123456789012_") {
			t.Errorf("scrub(%q) = %q", s, got)
		}
	}
}
