// Package trackdecode turns the RTP packets of one WebRTC track into decoded
// frames: VP8 or H.264 video into pictures, Opus audio into 48 kHz PCM.
//
// Each decoder owns a reorder buffer (pion's samplebuilder), a depacketizer
// and a go-astiav decoder. Packets may arrive in any order within the reorder
// window, duplicated, with gaps, or mixed with garbage: what cannot be used is
// counted in the decoder's stats and skipped, and Push never fails for it.
// Before the buffer, packets are filtered: another SSRC or payload type,
// payloads the depacketizer would reject, copies and packets from behind the
// window are dropped; padding-only packets keep their sequence number.
//
// Loss policy for video: a frame is decoded only when all its packets
// arrived. After a loss (a packet given up on, a frame missing its first
// packets, a frame header that does not fit its data, a decode error) every
// frame is dropped until the next keyframe, and NeedsKeyframe reports true so
// the caller sends a PLI. Frames that reference a lost one would otherwise
// decode into smeared garbage that stays on screen until the next keyframe
// anyway; a short freeze is the better picture for a composition.
//
// The reorder window only costs latency while a packet is missing. Video
// waits up to 250 ms of media for it (time for a NACK retransmission, which
// saves a keyframe round trip), audio up to 60 ms (audio is not
// retransmitted: a late packet is just a gap). The windows also hold at most
// 1024 video or 64 audio packets; a packet further ahead is a jump, and the
// buffer starts over. pion's samplebuilder emits a frame when the first
// packet of the next one arrives, so output lags input by one frame (one
// packet for audio), and the last frame of a track is not emitted.
//
// The package does not own the track, its reader goroutine or RTCP: the
// caller reads packets, calls Push, and sends a PLI while NeedsKeyframe is
// true (rate-limited on its side). Decoders start no goroutines. Each holds
// about 1.1 MB of Go memory (the samplebuilder's slot arrays) besides
// FFmpeg's.
package trackdecode

import (
	"errors"
	"strings"
	"sync/atomic"
)

// Codec names as WebRTC spells them (MIME types, matched case-insensitively).
const (
	MimeTypeVP8  = "video/VP8"
	MimeTypeH264 = "video/H264"
	MimeTypeOpus = "audio/opus"
)

var (
	// ErrClosed is returned by Push after Close.
	ErrClosed = errors.New("trackdecode: decoder closed")
	// ErrUnsupportedCodec is returned for a codec this package does not decode.
	ErrUnsupportedCodec = errors.New("trackdecode: unsupported codec")
	// ErrNilPacket is returned by Push for a nil packet.
	ErrNilPacket = errors.New("trackdecode: nil packet")
)

type videoCodec int

const (
	codecVP8 videoCodec = iota + 1
	codecH264
)

func parseVideoMime(mime string) (videoCodec, bool) {
	switch {
	case strings.EqualFold(mime, MimeTypeVP8):
		return codecVP8, true
	case strings.EqualFold(mime, MimeTypeH264):
		return codecH264, true
	}
	return 0, false
}

// PacketStats counts what became of a track's RTP packets. Every pushed
// packet is counted once in Pushed and at most once in one of the drop
// counters; Lost counts sequence numbers, including ones never pushed.
type PacketStats struct {
	Pushed    uint64 // packets given to Push
	Foreign   uint64 // another SSRC or payload type than the track's: dropped
	Malformed uint64 // payloads the depacketizer would reject, or oversized: dropped
	Padding   uint64 // padding-only packets (no media)
	Duplicate uint64 // a copy of a packet still in the reorder buffer: dropped
	Late      uint64 // arrived after the reorder buffer moved past it (late copies included): dropped
	// Lost counts the sequence numbers given up on: packets that had not
	// arrived when the reorder window moved past them.
	Lost uint64
	// Orphaned counts packets that arrived but that the reorder buffer
	// discarded: the rest of a video frame whose first packet was lost.
	Orphaned uint64
	// Resyncs counts restarts of the reorder buffer, whose content is lost:
	// the stream switched to another SSRC or to sequence numbers far behind
	// (for 32 packets in a row), or jumped ahead beyond the window.
	Resyncs uint64
}

// VideoStats counts what a video decoder did.
type VideoStats struct {
	PacketStats
	FramesDecoded uint64 // frames passed to onFrame
	// FramesSkipped counts complete frames not decoded because the decoder
	// was waiting for a keyframe.
	FramesSkipped uint64
	// FramesBroken counts assembled frames that could not be decodable:
	// missing their leading packets, or a header that does not fit the data.
	FramesBroken uint64
	DecodeErrors uint64 // frames the decoder rejected or flagged corrupt
	// KeyframeRequests counts the times the decoder entered the
	// needs-keyframe state, the one it starts in included.
	KeyframeRequests uint64
}

// AudioStats counts what an audio decoder did.
type AudioStats struct {
	PacketStats
	FramesDecoded  uint64 // frames passed to onFrame
	SamplesDecoded uint64 // samples per channel passed to onFrame
	DecodeErrors   uint64 // packets the decoder rejected
}

// counter indexes the atomic counters behind the stats, so that Stats can be
// read from any goroutine while Push runs.
type counter int

const (
	cPushed counter = iota
	cForeign
	cMalformed
	cPadding
	cDuplicate
	cLate
	cLost
	cOrphaned
	cResyncs
	cFramesDecoded
	cFramesSkipped
	cFramesBroken
	cSamplesDecoded
	cDecodeErrors
	cKeyframeRequests
	numCounters
)

type counters [numCounters]atomic.Uint64

func (c *counters) add(i counter, n uint64) { c[i].Add(n) }
func (c *counters) inc(i counter)           { c[i].Add(1) }
func (c *counters) get(i counter) uint64    { return c[i].Load() }

func (c *counters) packetStats() PacketStats {
	return PacketStats{
		Pushed:    c.get(cPushed),
		Foreign:   c.get(cForeign),
		Malformed: c.get(cMalformed),
		Padding:   c.get(cPadding),
		Duplicate: c.get(cDuplicate),
		Late:      c.get(cLate),
		Lost:      c.get(cLost),
		Orphaned:  c.get(cOrphaned),
		Resyncs:   c.get(cResyncs),
	}
}
