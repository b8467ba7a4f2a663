package ingest

import (
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// rtpMTU leaves room under a 1500-byte Ethernet MTU for IP, UDP, SRTP and
// the header extensions each subscriber's sender adds.
const rtpMTU = 1200

// h264Codec is what the stage offers subscribers for an RTMP publisher:
// constrained baseline, packetization mode 1, as a WHIP publisher's.
// Streams of other profiles are forwarded under it (see the README's
// limitations): FFmpeg and browsers decode them all the same.
var h264Codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
	SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}

// videoSender turns RTMP's AVCC access units into H.264 RTP packets on a
// stage track. One buffer, one packet and one payloader, reused.
type videoSender struct {
	track   *webrtcTrack
	cfg     *avcConfig
	pay     codecs.H264Payloader
	buf     []byte
	pkt     rtp.Packet
	tsBase  uint32
	started bool // the first IDR has been sent
}

func newVideoSender(track *webrtcTrack, cfg *avcConfig) *videoSender {
	return &videoSender{track: track, cfg: cfg, tsBase: rand.Uint32(),
		pkt: rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(rand.Uint32())}}}
}

// write sends the access unit presented at pts. Until the first IDR,
// access units are dropped: nothing can decode them. It reports whether
// the access unit was sent.
func (v *videoSender) write(pts time.Duration, au []byte) (bool, error) {
	var idr bool
	var err error
	v.buf, idr, err = v.cfg.annexB(v.buf[:0], au)
	if err != nil {
		return false, err
	}
	if len(v.buf) == 0 || !v.started && !idr {
		return false, nil
	}
	v.started = true
	payloads := v.pay.Payload(rtpMTU, v.buf)
	// RTMP timestamps are milliseconds; the RTP clock is 90 kHz.
	v.pkt.Timestamp = v.tsBase + uint32(pts.Milliseconds()*90)
	for i, p := range payloads {
		v.pkt.Marker = i == len(payloads)-1
		v.pkt.Payload = p
		// ErrClosedPipe: no subscriber is bound yet, which is no error.
		if err := v.track.WriteRTP(&v.pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return true, err
		}
		v.pkt.SequenceNumber++
	}
	return true, nil
}
