package stage

import (
	"testing"

	"github.com/stagehand-rt/stagehand/ivs"
)

func TestClientInfo(t *testing.T) {
	for _, tc := range []struct{ ua, browser, version, os, sdk string }{
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.8078.73 Safari/537.36", "Chrome", "156.0.8078.73", "Linux", ""},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox", "133.0", "Windows", ""},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari", "17.5", "macOS", ""},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86", "Edge", "131.0.2903.86", "Windows", ""},
		{"stagehand-publish/1.4", "", "", "", "1.4"},
		{"", "", "", "", ""},
	} {
		var p ivs.Participant
		clientInfo{userAgent: tc.ua}.fill(&p)
		if p.BrowserName != tc.browser || p.BrowserVersion != tc.version || p.OSName != tc.os || p.SDKVersion != tc.sdk {
			t.Errorf("%q → browser %q %q os %q sdk %q", tc.ua, p.BrowserName, p.BrowserVersion, p.OSName, p.SDKVersion)
		}
	}
}

// FuzzClientInfo: any User-Agent gives short fields and no panic.
func FuzzClientInfo(f *testing.F) {
	f.Add("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156.0 Safari/537.36")
	f.Add("x/")
	f.Add("Safari/Version/")
	f.Fuzz(func(t *testing.T, ua string) {
		var p ivs.Participant
		clientInfo{userAgent: ua}.fill(&p)
		for _, v := range []string{p.BrowserName, p.BrowserVersion, p.OSName, p.SDKVersion} {
			if len(v) > 32 {
				t.Fatalf("field %q longer than 32 bytes", v)
			}
		}
	})
}

// FuzzAcceptedMedia: counting an answer's media never panics.
func FuzzAcceptedMedia(f *testing.F) {
	f.Add("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\n")
	f.Fuzz(func(t *testing.T, answer string) {
		a, v := acceptedMedia(answer)
		if a < 0 || v < 0 {
			t.Fatal("negative count")
		}
	})
}
