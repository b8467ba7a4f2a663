package stage_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
)

// offerChecker posts offers to WHIP with a valid token and checks the
// stage answers 201 (then deletes the session) or refuses with 400.
type offerChecker struct {
	whip, tok string
	hc        *http.Client
}

func newOfferChecker(tb testing.TB) (*offerChecker, string) {
	tb.Helper()
	env := stagetest.Start(tb, stagetest.Options{})
	st := env.CreateStage(tb, "offers")
	return &offerChecker{whip: *st.Endpoints.Whip, tok: *env.Token(tb, *st.Arn, "offerer", nil).Token,
		hc: &http.Client{Timeout: 10 * time.Second}}, stagetest.OfferSDP(tb)
}

func (c *offerChecker) check(t *testing.T, offer string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.whip, strings.NewReader(offer))
	req.Header.Set("Authorization", "Bearer "+c.tok)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		loc, _ := url.Parse(c.whip)
		loc, _ = loc.Parse(resp.Header.Get("Location"))
		del, _ := http.NewRequest(http.MethodDelete, loc.String(), nil)
		del.Header.Set("Authorization", "Bearer "+c.tok)
		dr, err := c.hc.Do(del)
		if err != nil || dr.StatusCode != http.StatusOK {
			t.Fatalf("DELETE after 201: %v %v", dr, err)
		}
		dr.Body.Close()
	case http.StatusBadRequest:
	default:
		t.Fatalf("offer %q: status %d", offer, resp.StatusCode)
	}
}

// TestMangledOffers: every offer made from a real one by dropping a line or
// truncating it is answered or refused with 400, never a failure.
func TestMangledOffers(t *testing.T) {
	c, good := newOfferChecker(t)
	lines := strings.SplitAfter(good, "\n")
	for i := range lines {
		c.check(t, strings.Join(append(append([]string{}, lines[:i]...), lines[i+1:]...), ""))
	}
	for k := 1; k < 20; k++ {
		c.check(t, good[:len(good)*k/20])
	}
	for _, repl := range [][2]string{{"m=video", "m=text"}, {"UDP/TLS/RTP/SAVPF", "RTP/AVP"}, {"a=setup:actpass", "a=setup:passive"},
		{"a=fingerprint:sha-256", "a=fingerprint:md5"}, {"VP8/90000", "AV1X/90000"}, {"opus/48000/2", "PCMU/8000"}} {
		c.check(t, strings.ReplaceAll(good, repl[0], repl[1]))
	}
}

// FuzzOffer is the same check on arbitrary offers (each run negotiates a
// peer connection: give it -fuzzminimizetime 2s).
func FuzzOffer(f *testing.F) {
	c, good := newOfferChecker(f)
	f.Add(good)
	f.Add("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
	f.Fuzz(func(t *testing.T, offer string) { c.check(t, offer) })
}
