package ivsrec

import (
	"bytes"
	"testing"
)

func TestAVCCodec(t *testing.T) {
	sps := []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9}
	pps := []byte{0x68, 0xeb, 0xe3, 0xcb}
	annexB := append(append([]byte{0, 0, 0, 1}, sps...), append([]byte{0, 0, 1}, pps...)...)
	avcC := append([]byte{1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, byte(len(sps))}, sps...)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"annex b", annexB, "avc1.64001f"},
		{"avcC", avcC, "avc1.64001f"},
		{"no sps", append([]byte{0, 0, 1}, pps...), defaultAVCCodec},
		{"empty", nil, defaultAVCCodec},
	} {
		if got := AVCCodec(tc.data); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	idr := []byte{0x65, 0x88, 0x84, 0x00}
	ps := AVCParameterSets(append(append(annexB, 0, 0, 0, 1), idr...))
	if !bytes.Equal(ps.SPS, sps) || !bytes.Equal(ps.PPS, pps) {
		t.Errorf("parameter sets %x %x, want %x %x", ps.SPS, ps.PPS, sps, pps)
	}
}

func TestLayout(t *testing.T) {
	for got, want := range map[string]string{
		PlaylistPath("720p30-x"):            "media/hls/720p30-x/playlist.m3u8",
		SegmentPath("720p30-x", 3):          "media/hls/720p30-x/3.ts",
		ThumbnailsDir(ParticipantRendition): "media/thumbnails/high",
		LatestThumbnailDir("720p30-x"):      "media/latest_thumbnail/720p30-x",
		eventPath(StatusStarted):            "events/recording-started.json",
		eventPath(StatusEnded):              "events/recording-ended.json",
		eventPath(StatusEndedWithFailure):   "events/recording-failed.json",
		MultivariantPath:                    "media/hls/multivariant.m3u8",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}
