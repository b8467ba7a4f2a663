package trackdecode

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

const (
	// AudioSampleRate is the rate of the decoded audio: Opus always decodes
	// at 48 kHz, and its RTP clock runs at it too.
	AudioSampleRate = 48000
	// AudioChannels is the channel count of the decoded audio: WebRTC
	// signals Opus as stereo, and mono packets are decoded to both channels.
	AudioChannels = 2

	// audioMaxLate and audioMaxDelay make the reorder window: audio is not
	// retransmitted, so the window only has to absorb reordering, and a
	// missing packet costs at most 60 ms of delay before it is a gap.
	audioMaxLate  = 64
	audioMaxDelay = 60 * time.Millisecond
)

// Audio decodes the RTP packets of one Opus track into 48 kHz stereo
// planar float frames (astiav.SampleFormatFltp).
//
// A lost packet is a gap: no concealment is done, the RTP timestamps passed
// to onFrame show where the gap is. Push and Close may be called from
// different goroutines but are serialised; Stats may be called at any time.
type Audio struct {
	mu     sync.Mutex
	closed bool
	in     *intake
	dec    *decoder
	stats  counters
}

// NewAudio returns a decoder for an "audio/opus" track (case-insensitive).
// Close it.
func NewAudio(mimeType string) (*Audio, error) {
	if !strings.EqualFold(mimeType, MimeTypeOpus) {
		return nil, fmt.Errorf("trackdecode: audio codec %q (want %s): %w", mimeType, MimeTypeOpus, ErrUnsupportedCodec)
	}
	dec, err := openDecoder(decoderOptions{
		id: astiav.CodecIDOpus,
		configure: func(cc *astiav.CodecContext) {
			// No OpusHead extradata in WebRTC: the decoder takes the channel
			// count from here.
			cc.SetSampleRate(AudioSampleRate)
			cc.SetChannelLayout(astiav.ChannelLayoutStereo)
		},
	})
	if err != nil {
		return nil, err
	}
	a := &Audio{dec: dec}
	a.in = newIntake(intakeConfig{
		maxLate:         audioMaxLate,
		maxDelay:        audioMaxDelay,
		clockRate:       AudioSampleRate,
		dropped:         cLost, // Opus has no partitions: the only drops are gaps
		newDepacketizer: func() rtp.Depacketizer { return &codecs.OpusPacket{} },
		// Any non-empty payload is an Opus packet to the depacketizer; the
		// decoder judges the rest. Padding-only packets are dropped: audio
		// tracks carry none in practice, and a hole only costs a gap.
		valid: func(payload []byte) bool { return len(payload) > 0 },
	}, &a.stats)
	return a, nil
}

// Push takes one RTP packet of the track, in any order within the reorder
// window, and passes every frame decoded to onFrame with its RTP timestamp
// (which counts samples: 960 per 20 ms packet). The frame belongs to the
// decoder and is valid only during the call. onFrame may be nil; it must
// not call Push or Close. Push copies what it keeps.
//
// Packets that cannot be used are counted in Stats and skipped. Push fails
// only when misused: a nil packet, or after Close.
func (a *Audio) Push(pkt *rtp.Packet, onFrame func(f *astiav.Frame, rtpTS uint32)) error {
	if pkt == nil {
		return ErrNilPacket
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	a.in.push(pkt)
	for s := a.in.pop(); s != nil; s = a.in.pop() {
		if err := a.dec.send(s.Data, int64(s.PacketTimestamp)); err != nil {
			a.stats.inc(cDecodeErrors)
		}
		for {
			got, err := a.dec.receive()
			if err != nil {
				a.stats.inc(cDecodeErrors)
				break
			}
			if !got {
				break
			}
			f := a.dec.frame
			a.stats.inc(cFramesDecoded)
			a.stats.add(cSamplesDecoded, uint64(f.NbSamples()))
			if onFrame != nil {
				onFrame(f, frameTimestamp(f, s.PacketTimestamp))
			}
			f.Unref()
		}
	}
	return nil
}

// Stats returns the counters so far.
func (a *Audio) Stats() AudioStats {
	return AudioStats{
		PacketStats:    a.stats.packetStats(),
		FramesDecoded:  a.stats.get(cFramesDecoded),
		SamplesDecoded: a.stats.get(cSamplesDecoded),
		DecodeErrors:   a.stats.get(cDecodeErrors),
	}
}

// Close frees the decoder. It is safe to call more than once.
func (a *Audio) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.closed = true
	a.dec.free()
	a.in = nil
}
