package ingest

import (
	"bytes"
	"slices"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp/codecs"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
	testIDR = []byte{0x65, 0x88, 0x84, 0x00}
	testP   = []byte{0x41, 0x9a, 0x02}
	testAUD = []byte{0x09, 0xf0}
)

// avcc writes NAL units with n-byte lengths.
func avcc(n int, nalus ...[]byte) []byte {
	var b []byte
	for _, u := range nalus {
		for i := n - 1; i >= 0; i-- {
			b = append(b, byte(len(u)>>(8*i)))
		}
		b = append(b, u...)
	}
	return b
}

// annex writes NAL units as an Annex B stream. Marshal has no error to
// return.
func annex(nalus ...[]byte) []byte {
	b, _ := h264.AnnexB(nalus).Marshal()
	return b
}

func TestAnnexB(t *testing.T) {
	many := slices.Repeat([][]byte{testIDR}, 60)
	for _, tc := range []struct {
		name    string
		size    int
		au      []byte
		want    []byte
		idr     bool
		wantErr bool
	}{
		{"IDR gets the parameter sets", 4, avcc(4, testIDR), annex(testSPS, testPPS, testIDR), true, false},
		{"IDR with its own parameter sets", 4, avcc(4, testSPS, testPPS, testIDR), annex(testSPS, testPPS, testIDR), true, false},
		{"P frame as is", 4, avcc(4, testP), annex(testP), false, false},
		{"AUD dropped", 4, avcc(4, testAUD, testP), annex(testP), false, false},
		{"2-byte lengths", 2, avcc(2, testIDR), annex(testSPS, testPPS, testIDR), true, false},
		{"1-byte lengths", 1, avcc(1, testP, testP), annex(testP, testP), false, false},
		{"empty NAL units skipped", 4, append(avcc(4, nil), avcc(4, testP)...), annex(testP), false, false},
		{"only an AUD", 4, avcc(4, testAUD), nil, false, false},
		// More than h264.MaxNALUsPerAccessUnit: what small slices make.
		{"60 slices", 4, avcc(4, many...), annex(append([][]byte{testSPS, testPPS}, many...)...), true, false},
		{"empty", 4, nil, nil, false, false},
		{"length past the end", 4, []byte{0, 0, 0, 9, 0x65, 1}, nil, false, true},
		{"truncated length", 4, []byte{0, 0}, nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &avcConfig{lengthSize: tc.size, sps: [][]byte{testSPS}, pps: [][]byte{testPPS}}
			prefix := []byte("kept")
			got, idr, err := c.annexB(append([]byte(nil), prefix...), tc.au)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], tc.want) || idr != tc.idr {
				t.Errorf("got % x idr %v, want % x idr %v", got[len(prefix):], idr, tc.want, tc.idr)
			}
		})
	}
}

// FuzzAnnexB: any access unit converts without panic, to a stream whose
// NAL units are exactly the input's (parameter sets added before an IDR,
// AUDs dropped), and packetizes.
func FuzzAnnexB(f *testing.F) {
	f.Add(byte(3), avcc(4, testIDR))
	f.Add(byte(1), avcc(2, testSPS, testP))
	f.Add(byte(0), []byte{0, 0, 0, 0, 0, 0, 0, 5, 0x65})
	f.Add(byte(3), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, sizeMinusOne byte, au []byte) {
		size := []int{1, 2, 4, 4}[sizeMinusOne%4]
		c := &avcConfig{lengthSize: size, sps: [][]byte{testSPS}, pps: [][]byte{testPPS}}
		out, idr, err := c.annexB(nil, au)
		if err != nil {
			if len(out) != 0 {
				t.Fatalf("error %v with output % x", err, out)
			}
			return
		}
		if idr && !hasSPS(out) {
			t.Fatalf("IDR without SPS: % x", out)
		}
		if len(out) > len(au)*2+len(annex(testSPS, testPPS))+8 {
			t.Fatalf("output of %d bytes from %d", len(out), len(au))
		}
		var pay codecs.H264Payloader
		for _, p := range pay.Payload(rtpMTU, out) {
			if len(p) > rtpMTU {
				t.Fatalf("payload of %d bytes over the MTU", len(p))
			}
		}
	})
}

// hasSPS reports whether an Annex B stream made by annexB has an SPS. (Not
// h264.AnnexB.Unmarshal: it refuses more than 50 NAL units.)
func hasSPS(b []byte) bool {
	for _, u := range bytes.Split(b, []byte{0, 0, 0, 1}) {
		if len(u) > 0 && naluType(u) == h264.NALUTypeSPS {
			return true
		}
	}
	return false
}

// BenchmarkAnnexB converts RTMP access units as videoSender does, into
// one reused buffer: a keyframe of a 40 kB IDR slice, then 4 kB P frames.
func BenchmarkAnnexB(b *testing.B) {
	slice := func(header byte, n int) []byte {
		s := bytes.Repeat([]byte{0x5a}, n)
		s[0] = header
		return s
	}
	key, p := avcc(4, testAUD, slice(0x65, 40_000)), avcc(4, testAUD, slice(0x41, 4_000))
	c := &avcConfig{lengthSize: 4, sps: [][]byte{testSPS}, pps: [][]byte{testPPS}}
	var buf []byte
	b.ReportAllocs()
	for i := range b.N {
		au := p
		if i%60 == 0 {
			au = key
		}
		var err error
		if buf, _, err = c.annexB(buf[:0], au); err != nil {
			b.Fatal(err)
		}
	}
}
