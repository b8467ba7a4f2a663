package ingest

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/stage"
)

// webrtcTrack is a stage track named as the stage names a WHIP publisher's
// ("video", "audio", in the participant's stream).
type webrtcTrack = stage.LocalTrack

// opusCodec is the stage's Opus, as a WHIP publisher's.
var opusCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: opusRate, Channels: 2,
	SDPFmtpLine: "minptime=10;useinbandfec=1"}

// audioSender transcodes AAC to Opus onto a stage track.
type audioSender struct {
	track  *webrtcTrack
	tc     *transcoder
	pkt    rtp.Packet
	tsBase uint32
	emit   func([]byte, uint32) error
}

func newAudioSender(track *webrtcTrack, asc []byte, bitrate int) (*audioSender, error) {
	tc, err := newTranscoder(asc, bitrate)
	if err != nil {
		return nil, err
	}
	a := &audioSender{track: track, tc: tc, tsBase: rand.Uint32(),
		pkt: rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(rand.Uint32())}}}
	a.emit = a.send
	return a, nil
}

// write transcodes one AAC access unit.
func (a *audioSender) write(au []byte) error { return a.tc.push(au, a.emit) }

func (a *audioSender) send(opus []byte, ts uint32) error {
	a.pkt.Timestamp = a.tsBase + ts
	a.pkt.Payload = opus
	a.pkt.Marker = false
	err := a.track.WriteRTP(&a.pkt)
	a.pkt.SequenceNumber++
	if err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("send Opus: %w", err)
	}
	return nil
}

// reconfigure restarts the AAC decoder for a new sequence header (an
// encoder that changed its settings); the Opus timeline goes on.
func (a *audioSender) reconfigure(asc []byte, bitrate int) error {
	tc, err := newTranscoder(asc, bitrate)
	if err != nil {
		return fmt.Errorf("new AAC sequence header: %w", err)
	}
	next := a.tc.encodedPTS
	a.tc.close()
	tc.encodedPTS = next
	a.tc = tc
	return nil
}

func (a *audioSender) close() {
	if a.tc != nil {
		a.tc.close()
		a.tc = nil
	}
}
