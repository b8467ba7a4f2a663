package trackdecode

import (
	"bytes"
	"encoding/binary"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp/codecs"
)

// frameInfo is what the decoder needs to know about an assembled frame
// before deciding whether to decode it.
type frameInfo struct {
	key       bool // decodable without earlier frames
	padding   bool // the stand-in for padding packets: no media
	broken    bool // cannot decode: its start is missing or its header does not fit
	noPicture bool // H.264 parameter sets or SEI only: always worth feeding
}

// vp8Padding stands in for padding-only VP8 packets: a payload descriptor
// that starts partition 0 (so samplebuilder takes it as a frame head) and
// carries no data.
var vp8Padding = []byte{0x10}

// h264Padding stands in for padding-only H.264 packets: an empty filler
// data NAL unit.
var h264Padding = []byte{byte(h264.NALUTypeFillerData), 0x80}

// fillerMagic ends the data of a frame that had a hole filled (see
// intakeConfig.filler). Sixteen bytes a real frame ends with by chance once
// in 2^128; none is zero, so no Annex-B start code can appear in it.
var fillerMagic = []byte{0x5f, 0xa1, 0x3c, 0xe7, 0x92, 0x4b, 0xd8, 0x16, 0x7e, 0xc3, 0x29, 0xb5, 0x61, 0xf4, 0x8a, 0x0d}

// vp8Filler is a payload descriptor starting partition 0, then the magic.
var vp8Filler = append([]byte{0x10}, fillerMagic...)

// h264Filler is a filler data NAL unit carrying the magic; it ends in
// fillerMagic and the RBSP stop bit.
var h264Filler = append(append([]byte{byte(h264.NALUTypeFillerData)}, fillerMagic...), 0x80)

// vp8Checker reports whether codecs.VP8Packet would parse a payload. It
// reuses one VP8Packet, so checking allocates nothing.
type vp8Checker struct{ p codecs.VP8Packet }

func (c *vp8Checker) valid(payload []byte) bool {
	_, err := c.p.Unmarshal(payload)
	return err == nil
}

// vp8StartsFrame is samplebuilder's head handler for VP8: it sees the
// depacketizer after the first packet of a sample, and reports whether that
// packet starts partition 0. A sample that starts at a later partition lost
// its beginning.
func vp8StartsFrame(depacketizer any) any {
	p, ok := depacketizer.(*codecs.VP8Packet)
	return ok && p.S == 1 && p.PID == 0
}

// inspectVP8 checks the frame header of an assembled VP8 frame (RFC 6386
// section 9.1): a frame tag, then for keyframes a start code and the size.
func inspectVP8(b []byte, startsFrame bool) frameInfo {
	if len(b) == 0 {
		return frameInfo{padding: true}
	}
	if !startsFrame || len(b) < 3 {
		return frameInfo{broken: true}
	}
	tag := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	key := tag&1 == 0
	if (tag>>1)&7 > 3 { // version
		return frameInfo{broken: true}
	}
	header := 3
	if key {
		if len(b) < 10 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
			return frameInfo{broken: true}
		}
		w := binary.LittleEndian.Uint16(b[6:]) & 0x3fff
		h := binary.LittleEndian.Uint16(b[8:]) & 0x3fff
		if w == 0 || h == 0 {
			return frameInfo{broken: true}
		}
		header = 10
	}
	// The first partition (modes and motion vectors) must be all there; a
	// frame cut short in its token partition is left to the decoder.
	if header+int(tag>>5) > len(b) {
		return frameInfo{broken: true}
	}
	return frameInfo{key: key}
}

// h264Depacketizer is codecs.H264Packet, which keeps the fragments of an
// FU-A NAL unit across calls, made to forget a fragment that never got its
// end: anything but an FU-A continuation starts a new NAL unit.
type h264Depacketizer struct{ codecs.H264Packet }

func (d *h264Depacketizer) Unmarshal(payload []byte) ([]byte, error) {
	if len(payload) < 2 || naluType(payload[0]) != h264.NALUTypeFUA || payload[1]&0x80 != 0 {
		d.H264Packet = codecs.H264Packet{}
	}
	return d.H264Packet.Unmarshal(payload)
}

// validH264 reports whether codecs.H264Packet would parse a payload (RFC
// 6184): a single NAL unit, an STAP-A whose sizes fit, or an FU-A.
func validH264(payload []byte) bool {
	if len(payload) == 0 {
		return false
	}
	switch t := naluType(payload[0]); {
	case t >= h264.NALUTypeNonIDR && t <= h264.NALUTypeReserved23:
		return true
	case t == h264.NALUTypeSTAPA:
		for off := 1; len(payload)-off >= 2; {
			size := int(binary.BigEndian.Uint16(payload[off:]))
			off += 2
			if len(payload) < off+size {
				return false
			}
			off += size
		}
		return true
	case t == h264.NALUTypeFUA:
		return len(payload) >= 2
	}
	return false
}

// naluType reads the type from a NAL unit header byte.
func naluType(header byte) h264.NALUType { return h264.NALUType(header & 0x1f) }

var annexBStart = []byte{0, 0, 1}

// nextNAL returns the first NAL unit of an Annex-B stream and the rest.
// It stands in for h264.AnnexB.Unmarshal, which refuses access units of
// more than h264.MaxNALUsPerAccessUnit (50) NAL units: an encoder that cuts
// slices to fit RTP packets (x264's slice-max-size, for one) sends more in
// a large keyframe, which would be dropped as broken. And it allocates
// nothing, where Unmarshal allocates once per frame.
func nextNAL(b []byte) (nal, rest []byte, ok bool) {
	i := bytes.Index(b, annexBStart)
	if i < 0 {
		return nil, nil, false
	}
	b = b[i+3:]
	if j := bytes.Index(b, annexBStart); j >= 0 {
		nal, rest = b[:j], b[j:]
	} else {
		nal = b
	}
	for len(nal) > 0 && nal[len(nal)-1] == 0 { // the zero of a 4-byte start code
		nal = nal[:len(nal)-1]
	}
	return nal, rest, true
}

// inspectH264 looks at the NAL units of an assembled access unit.
func inspectH264(b []byte) frameInfo {
	var info frameInfo
	nals, vcl, filler := 0, false, true
	for nal, rest, ok := nextNAL(b); ok; nal, rest, ok = nextNAL(rest) {
		if len(nal) == 0 {
			continue
		}
		nals++
		if nal[0]&0x80 != 0 { // forbidden_zero_bit
			return frameInfo{broken: true}
		}
		t := naluType(nal[0])
		if t != h264.NALUTypeFillerData {
			filler = false
		}
		if t != h264.NALUTypeNonIDR && t != h264.NALUTypeIDR {
			continue
		}
		if !vcl {
			vcl = true
			// first_mb_in_slice is ue(v), which codes 0 as a single 1 bit. A
			// first slice that starts further in means the access unit lost
			// its beginning.
			if len(nal) < 2 || nal[1]&0x80 == 0 {
				return frameInfo{broken: true}
			}
		}
		if t == h264.NALUTypeIDR {
			info.key = true
		}
	}
	switch {
	case nals == 0:
		return frameInfo{broken: true}
	case filler:
		return frameInfo{padding: true}
	}
	info.noPicture = !vcl
	return info
}
