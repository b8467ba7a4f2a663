package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/token"
)

func testToken(t *testing.T, c token.Claims) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	s, err := token.NewSigner(key, "arn:aws:ivs:us-east-1:123456789012:public-key/abcdABCDabcd")
	if err != nil {
		t.Fatal(err)
	}
	if c.StageARN == "" {
		c.StageARN = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCDabcd"
	}
	c.ParticipantID = "pidABCDabcd1"
	c.IssuedAt = time.Now().Add(-time.Minute).Truncate(time.Second)
	c.ExpiresAt = c.IssuedAt.Add(time.Hour)
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestPublishFlags: the WHIP URL and label come from the token; bad
// settings are refused before anything connects.
func TestPublishFlags(t *testing.T) {
	withWhip := testToken(t, token.Claims{Publish: true, UserID: "alice", WhipURL: "http://127.0.0.1:1/whip"})
	noWhip := testToken(t, token.Claims{Publish: true})
	subOnly := testToken(t, token.Claims{Subscribe: true, WhipURL: "http://127.0.0.1:1/whip"})

	cfg, err := parsePublishFlags([]string{"--token", withWhip}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WHIPURL != "http://127.0.0.1:1/whip" || cfg.Media.Label != "alice" || cfg.Media.Width != 640 || cfg.Media.Height != 360 {
		t.Errorf("config = %+v", cfg)
	}
	cfg, err = parsePublishFlags([]string{"--token", noWhip, "--whip-url", "http://h/whip", "--label", "L", "--size", "1280x720", "--codec", "h264"}, &bytes.Buffer{})
	if err != nil || cfg.WHIPURL != "http://h/whip" || cfg.Media.Label != "L" || cfg.Media.Width != 1280 || cfg.Media.VideoCodec != "H264" {
		t.Errorf("config = %+v, %v", cfg, err)
	}
	cfg, err = parsePublishFlags([]string{"--token", withWhip, "--simulcast"}, &bytes.Buffer{})
	if err != nil || !cfg.Simulcast {
		t.Errorf("--simulcast: %+v, %v", cfg, err)
	}
	t.Setenv("STAGEHAND_TOKEN", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no token"},
		{[]string{"--token", "junk"}, "--token"},
		{[]string{"--token", noWhip}, "whip_url"},
		{[]string{"--token", subOnly}, "no PUBLISH capability"},
		{[]string{"--token", withWhip, "--size", "big"}, "--size"},
		{[]string{"--token", withWhip, "--size", "641x360"}, "Width"},
		{[]string{"--token", withWhip, "--codec", "AV1"}, "VideoCodec"},
		{[]string{"--token", withWhip, "--color", "notacolour"}, "Color"},
		{[]string{"--token", withWhip, "--no-audio", "--no-video"}, "nothing to publish"},
		{[]string{"--token", withWhip, "--ice-ip", "x"}, "not an IP"},
		{[]string{"--token", withWhip, "--simulcast", "--no-video"}, "--simulcast layers the video"},
	} {
		_, err := parsePublishFlags(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("publish %v: %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
