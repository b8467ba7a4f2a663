package ivsrec

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// defaultAVCCodec is High 4.0: what players assume for 1080p when the SPS
// is missing.
const defaultAVCCodec = "avc1.640028"

// AVCCodec is the RFC 6381 codec string, "avc1.PPCCLL", of H.264
// parameter sets: extradata in Annex B or as an avcC record, or an Annex B
// access unit that carries them.
func AVCCodec(extradata []byte) string {
	var pcl []byte // profile_idc, constraint flags, level_idc
	if len(extradata) >= 4 && extradata[0] == 1 {
		pcl = extradata[1:4] // avcC copies them from the SPS after its version
	} else if sps := AVCParameterSets(extradata).SPS; len(sps) >= 4 {
		pcl = sps[1:4]
	}
	if pcl == nil {
		return defaultAVCCodec
	}
	return fmt.Sprintf("avc1.%02x%02x%02x", pcl[0], pcl[1], pcl[2])
}

// ParameterSets are the first SPS and PPS NAL units of H.264 data; nil
// when it has none.
type ParameterSets struct{ SPS, PPS []byte }

// AVCParameterSets finds the parameter sets in Annex B data.
func AVCParameterSets(annexB []byte) ParameterSets {
	var au h264.AnnexB
	if au.Unmarshal(annexB) != nil {
		return ParameterSets{}
	}
	var ps ParameterSets
	for _, nalu := range au {
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeSPS:
			if ps.SPS == nil {
				ps.SPS = nalu
			}
		case h264.NALUTypePPS:
			if ps.PPS == nil {
				ps.PPS = nalu
			}
		}
	}
	return ps
}

// AACCodec is the RFC 6381 codec string of AAC-LC, the audio of every
// recording.
const AACCodec = "mp4a.40.2"
