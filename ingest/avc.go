package ingest

import (
	"errors"
	"fmt"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// avcConfig is what an FLV AVC sequence header (AVCDecoderConfiguration
// record) gives: the size of the NAL length prefixes of every access unit,
// and the parameter sets.
type avcConfig struct {
	lengthSize int
	sps, pps   [][]byte
}

var errNoParameterSets = errors.New("the AVC sequence header has no SPS or no PPS")

func newAVCConfig(r *mp4.AVCDecoderConfiguration) (*avcConfig, error) {
	c := &avcConfig{lengthSize: int(r.LengthSizeMinusOne) + 1}
	if c.lengthSize == 3 {
		// ISO 14496-15 allows 1, 2 and 4 bytes only.
		return nil, errors.New("the AVC sequence header has a NAL length size of 3 bytes")
	}
	for _, ps := range r.SequenceParameterSets {
		if len(ps.NALUnit) > 0 {
			c.sps = append(c.sps, ps.NALUnit)
		}
	}
	for _, ps := range r.PictureParameterSets {
		if len(ps.NALUnit) > 0 {
			c.pps = append(c.pps, ps.NALUnit)
		}
	}
	if len(c.sps) == 0 || len(c.pps) == 0 {
		return nil, errNoParameterSets
	}
	return c, nil
}

var startCode = []byte{0, 0, 0, 1}

// annexB appends the access unit au (AVCC: NAL units each preceded by a
// big-endian length of c.lengthSize bytes) to dst as an Annex B byte
// stream. WebRTC decoders need the parameter sets in-band, and RTMP sends
// them once, in the sequence header: so an access unit with an IDR slice
// gets the configuration's SPS and PPS in front of it, each unless it has
// its own.
// Access unit delimiters are dropped (they are no use over RTP).
//
// It reports whether au holds an IDR slice. A length that runs past the
// end of au is an error; dst is then returned as it was.
func (c *avcConfig) annexB(dst, au []byte) (_ []byte, idr bool, err error) {
	hasSPS, hasPPS := false, false
	for rest := au; len(rest) > 0; {
		nalu, next, err := c.next(rest)
		if err != nil {
			return dst, false, err
		}
		if nalu == nil {
			break
		}
		switch naluType(nalu) {
		case h264.NALUTypeIDR:
			idr = true
		case h264.NALUTypeSPS:
			hasSPS = true
		case h264.NALUTypePPS:
			hasPPS = true
		}
		rest = next
	}
	start := len(dst)
	if idr && !hasSPS {
		for _, ps := range c.sps {
			dst = append(append(dst, startCode...), ps...)
		}
	}
	if idr && !hasPPS {
		for _, ps := range c.pps {
			dst = append(append(dst, startCode...), ps...)
		}
	}
	for rest := au; len(rest) > 0; {
		nalu, next, _ := c.next(rest) // checked above
		if nalu != nil && naluType(nalu) != h264.NALUTypeAccessUnitDelimiter {
			dst = append(append(dst, startCode...), nalu...)
		}
		rest = next
	}
	if len(dst) == start {
		return dst, false, nil
	}
	return dst, idr, nil
}

// next splits the first NAL unit off b. Empty NAL units are skipped.
//
// It stands in for h264.AVCC.Unmarshal, which reads 4-byte lengths only
// (the sequence header may say 1 or 2) and refuses access units of more
// than h264.MaxNALUsPerAccessUnit (50) NAL units, which an encoder cutting
// small slices exceeds. And splitting in place allocates nothing, where
// Unmarshal and AnnexB.Marshal allocate for every access unit.
func (c *avcConfig) next(b []byte) (nalu, rest []byte, err error) {
	for len(b) > 0 {
		if len(b) < c.lengthSize {
			return nil, nil, fmt.Errorf("AVCC: %d bytes left, shorter than a %d-byte NAL length", len(b), c.lengthSize)
		}
		n := 0
		for _, x := range b[:c.lengthSize] {
			n = n<<8 | int(x)
		}
		b = b[c.lengthSize:]
		if n > len(b) {
			return nil, nil, fmt.Errorf("AVCC: NAL unit of %d bytes with %d bytes left", n, len(b))
		}
		if n > 0 {
			return b[:n], b[n:], nil
		}
	}
	return nil, nil, nil
}

// naluType reads the type from a NAL unit's header byte.
func naluType(nalu []byte) h264.NALUType { return h264.NALUType(nalu[0] & 0x1f) }
