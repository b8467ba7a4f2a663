package trackdecode

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"
)

const (
	videoClockRate = 90000
	// videoMaxLate is the reorder window in packets. It has to hold the
	// largest frame whole: 1024 packets of a 1200-byte MTU are 1.2 MB,
	// beyond any keyframe a participant sends. Missing packets are given up
	// on by media time (videoMaxDelay), long before the count fills even at
	// 20 Mbps.
	videoMaxLate  = 1024
	videoMaxDelay = 250 * time.Millisecond
	// videoMaxPixels refuses pictures above 4K UHD.
	videoMaxPixels = 3840 * 2160
)

// Video decodes the RTP packets of one VP8 or H.264 track into pictures,
// YUV420P for the streams browsers send.
//
// Push and Close may be called from different goroutines but are
// serialised; Stats and NeedsKeyframe may be called at any time, including
// from onFrame.
type Video struct {
	codec videoCodec
	// fillerTail ends the data of a frame with a hole (intakeConfig.filler),
	// which is fillerOnly bytes long when the hole is all there is.
	fillerTail []byte
	fillerOnly int
	mu         sync.Mutex
	closed     bool
	in         *intake
	dec        *decoder
	needKey    atomic.Bool
	stats      counters
	onAU       func(data []byte, rtpTS uint32, key bool) (decode bool)
}

// SetAccessUnitHandler hands fn every complete frame that Push would
// decode, before decoding it: from a keyframe on, and after a loss again
// from the next keyframe. H.264 comes in Annex B. fn reports whether to
// decode the frame too: a recorder that remuxes H.264 decodes keyframes
// only (for its size and thumbnails). data is valid only during the call.
// Call it before the first Push.
func (v *Video) SetAccessUnitHandler(fn func(data []byte, rtpTS uint32, key bool) (decode bool)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.onAU = fn
}

// NewVideo returns a decoder for a track of the given codec, "video/VP8" or
// "video/H264" (case-insensitive). Close it.
func NewVideo(mimeType string) (*Video, error) {
	codec, ok := parseVideoMime(mimeType)
	if !ok {
		return nil, fmt.Errorf("trackdecode: video codec %q (want %s or %s): %w", mimeType, MimeTypeVP8, MimeTypeH264,
			ErrUnsupportedCodec)
	}
	cfg := intakeConfig{
		maxLate:   videoMaxLate,
		maxDelay:  videoMaxDelay,
		clockRate: videoClockRate,
		dropped:   cOrphaned,
	}
	var (
		id         astiav.CodecID
		fillerTail []byte
		fillerOnly int
	)
	switch codec {
	case codecVP8:
		id = astiav.CodecIDVp8
		check := &vp8Checker{}
		cfg.newDepacketizer = func() rtp.Depacketizer { return &codecs.VP8Packet{} }
		cfg.headHandler = vp8StartsFrame
		cfg.valid = check.valid
		cfg.padding = vp8Padding
		cfg.filler, fillerTail, fillerOnly = vp8Filler, fillerMagic, len(fillerMagic)
	case codecH264:
		id = astiav.CodecIDH264
		cfg.newDepacketizer = func() rtp.Depacketizer { return &h264Depacketizer{} }
		cfg.valid = validH264
		cfg.padding = h264Padding
		cfg.filler, fillerTail, fillerOnly = h264Filler, h264Filler[1:], 4+len(h264Filler) // after a start code
	}
	dec, err := openDecoder(decoderOptions{
		id:        id,
		maxPixels: videoMaxPixels,
		configure: func(cc *astiav.CodecContext) {
			// WebRTC streams have no B-frames: output each picture as soon as
			// it is decoded instead of guessing a reorder delay.
			cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagLowDelay))
		},
	})
	if err != nil {
		return nil, err
	}
	v := &Video{codec: codec, fillerTail: fillerTail, fillerOnly: fillerOnly, dec: dec}
	v.in = newIntake(cfg, &v.stats)
	v.lose() // nothing decodes before the first keyframe
	return v, nil
}

// Push takes one RTP packet of the track, in any order within the reorder
// window. Push copies what it keeps: pkt may be reused when Push returns.
// Every frame that becomes decodable is decoded and passed to onFrame with
// its RTP timestamp. The frame belongs to the decoder and is valid only
// during the call: Ref it to keep it. onFrame may be nil; it must not call
// Push or Close.
//
// Packets that cannot be used are counted in Stats and skipped. Push fails
// only when misused: a nil packet, or after Close.
func (v *Video) Push(pkt *rtp.Packet, onFrame func(f *astiav.Frame, rtpTS uint32)) error {
	if pkt == nil {
		return ErrNilPacket
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return ErrClosed
	}
	restarted := v.in.push(pkt)
	for s := v.in.pop(); s != nil; s = v.in.pop() {
		v.handle(s, onFrame)
	}
	if restarted {
		v.lose() // frames in flight went with the old buffer
	}
	return nil
}

// NeedsKeyframe reports that the decoder has no usable reference: it has
// not decoded a keyframe yet, or lost packets or hit a decode error since.
// It stays true until a keyframe is decoded; the caller should send a PLI
// while it is true.
func (v *Video) NeedsKeyframe() bool { return v.needKey.Load() }

// Stats returns the counters so far.
func (v *Video) Stats() VideoStats {
	return VideoStats{
		PacketStats:      v.stats.packetStats(),
		FramesDecoded:    v.stats.get(cFramesDecoded),
		FramesSkipped:    v.stats.get(cFramesSkipped),
		FramesBroken:     v.stats.get(cFramesBroken),
		DecodeErrors:     v.stats.get(cDecodeErrors),
		KeyframeRequests: v.stats.get(cKeyframeRequests),
	}
}

// Close frees the decoder. It is safe to call more than once.
func (v *Video) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	v.dec.free()
	v.in = nil
}

// lose enters the needs-keyframe state.
func (v *Video) lose() {
	if !v.needKey.Swap(true) {
		v.stats.inc(cKeyframeRequests)
	}
}

func (v *Video) handle(s *media.Sample, onFrame func(*astiav.Frame, uint32)) {
	if s.PrevDroppedPackets > 0 {
		v.lose()
	}
	if bytes.HasSuffix(s.Data, v.fillerTail) {
		// A hole given up on: a frame broken, or lost whole.
		if len(s.Data) > v.fillerOnly {
			v.stats.inc(cFramesBroken)
		}
		v.lose()
		return
	}
	var info frameInfo
	switch v.codec {
	case codecVP8:
		starts, _ := s.Metadata.(bool)
		info = inspectVP8(s.Data, starts)
	case codecH264:
		info = inspectH264(s.Data)
	}
	switch {
	case info.padding:
		return
	case info.broken:
		v.stats.inc(cFramesBroken)
		v.lose()
		return
	case v.needKey.Load() && !info.key && !info.noPicture:
		v.stats.inc(cFramesSkipped)
		return
	}

	if v.onAU != nil && !v.onAU(s.Data, s.PacketTimestamp, info.key) {
		return
	}
	if err := v.dec.send(s.Data, int64(s.PacketTimestamp)); err != nil {
		v.stats.inc(cDecodeErrors)
		v.lose()
	}
	for {
		got, err := v.dec.receive()
		if err != nil {
			v.stats.inc(cDecodeErrors)
			v.lose()
			return
		}
		if !got {
			return
		}
		f := v.dec.frame
		switch {
		case frameDamaged(f):
			v.stats.inc(cDecodeErrors)
			v.lose()
		case v.needKey.Load() && !f.KeyFrame():
			v.stats.inc(cFramesSkipped)
		default:
			v.needKey.Store(false)
			v.stats.inc(cFramesDecoded)
			if onFrame != nil {
				onFrame(f, frameTimestamp(f, s.PacketTimestamp))
			}
		}
		f.Unref()
	}
}

// frameTimestamp is the RTP timestamp of the packet a frame was decoded
// from, which the decoder carries as the frame's pts.
func frameTimestamp(f *astiav.Frame, fallback uint32) uint32 {
	if pts := f.Pts(); pts != astiav.NoPtsValue {
		return uint32(pts)
	}
	return fallback
}
