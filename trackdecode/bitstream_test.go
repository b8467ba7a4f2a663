package trackdecode

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1f, 0xd9}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

// testSlice is a slice NAL unit of n bytes (n >= 2) with the given header
// byte, starting at macroblock 0 and free of start codes.
func testSlice(header byte, n int) []byte {
	s := []byte{header, 0x88} // first_mb_in_slice 0
	for len(s) < n {
		s = append(s, byte(1+len(s)%251))
	}
	return s
}

// annexB writes NAL units as an Annex-B access unit. Marshal has no error to
// return.
func annexB(nalus ...[]byte) []byte {
	b, _ := h264.AnnexB(nalus).Marshal()
	return b
}

func TestInspectH264(t *testing.T) {
	idr, p := testSlice(0x65, 100), testSlice(0x41, 100)
	slices := [][]byte{testSPS, testPPS}
	for range 60 {
		slices = append(slices, idr)
	}
	laterSlice := append([]byte{0x41, 0x40}, p[2:]...) // first_mb_in_slice 1
	for _, tc := range []struct {
		name string
		au   []byte
		want frameInfo
	}{
		{"keyframe", annexB(testSPS, testPPS, idr), frameInfo{key: true}},
		{"P frame", annexB(p), frameInfo{}},
		{"3-byte start codes", append([]byte{0, 0, 1}, p...), frameInfo{}},
		// More than h264.MaxNALUsPerAccessUnit: what slice-max-size makes.
		{"62 NAL units", annexB(slices...), frameInfo{key: true}},
		{"parameter sets only", annexB(testSPS, testPPS), frameInfo{noPicture: true}},
		{"padding", append([]byte{0, 0, 0, 1}, h264Padding...), frameInfo{padding: true}},
		{"lost its first slice", annexB(laterSlice), frameInfo{broken: true}},
		{"forbidden bit", annexB([]byte{0xe5, 0x88}), frameInfo{broken: true}},
		{"no start code", p, frameInfo{broken: true}},
		{"empty", nil, frameInfo{broken: true}},
	} {
		if got := inspectH264(tc.au); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
