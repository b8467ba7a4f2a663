package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/stage/client"
)

// maxLag is how far a publisher may fall behind its clock (a starved
// machine) before it restarts the clock rather than send a burst.
const maxLag = 500 * time.Millisecond

// publisher is one synthetic participant replaying the media loop.
type publisher struct {
	id    string // participant id
	stage *stageRun
	media *mediaLoop
	conn  *client.Publisher
	join  time.Duration

	video, audio *webrtc.TrackLocalStaticRTP
	log          sendLog
	keyframe     atomic.Bool
	sentBytes    atomic.Int64
	sentPackets  atomic.Int64
}

func newPublisher(s *stageRun, m *mediaLoop, id string) (*publisher, error) {
	p := &publisher{id: id, stage: s, media: m}
	p.log.base, p.log.step = rand.Uint32(), m.videoTicks
	capab := webrtc.RTPCodecCapability{MimeType: m.videoMime, ClockRate: 90000}
	if m.videoMime == webrtc.MimeTypeH264 {
		capab.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	}
	var err error
	if p.video, err = webrtc.NewTrackLocalStaticRTP(capab, "video", id); err != nil {
		return nil, fmt.Errorf("video track: %w", err)
	}
	opus := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	if p.audio, err = webrtc.NewTrackLocalStaticRTP(opus, "audio", id); err != nil {
		return nil, fmt.Errorf("audio track: %w", err)
	}
	return p, nil
}

// connect joins the stage over WHIP.
func (p *publisher) connect(ctx context.Context, tok string, o client.Options) error {
	start := time.Now()
	conn, err := client.Publish(ctx, p.stage.whip, tok, client.PublishOptions{Options: o,
		Tracks: []webrtc.TrackLocal{p.video, p.audio}, OnKeyframeRequest: func() { p.keyframe.Store(true) }})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	p.conn, p.join = conn, time.Since(start)
	return nil
}

// stream is one RTP stream's header state.
type stream struct {
	pkt rtp.Packet
}

func newStream(pt uint8) *stream {
	return &stream{pkt: rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt,
		SequenceNumber: uint16(rand.Uint32()), SSRC: rand.Uint32()}}}
}

// write sends one frame's packets with timestamp ts (the track sets the
// negotiated SSRC and payload type).
func (s *stream) write(t *webrtc.TrackLocalStaticRTP, f frame, ts uint32, marker bool) (int, error) {
	s.pkt.Timestamp = ts
	for i, pl := range f.payloads {
		s.pkt.Marker = marker && i == len(f.payloads)-1
		s.pkt.Payload = pl
		if err := t.WriteRTP(&s.pkt); err != nil {
			return i, err
		}
		s.pkt.SequenceNumber++
	}
	return len(f.payloads), nil
}

// run sends the loop at its pace until ctx ends: video from the loop's
// keyframe, again from there on a keyframe request.
func (p *publisher) run(ctx context.Context) {
	v, a := newStream(96), newStream(111)
	audioBase := rand.Uint32()
	var (
		frameNo, audioNo int64 // sent since the start: the RTP timestamps
		vn, an           int64 // sent since the clock started
		pos              int   // in the video loop
		start            = time.Now()
		timer            = time.NewTimer(0)
	)
	defer timer.Stop()
	for {
		vt, at := p.media.videoTime(vn), time.Duration(an)*audioPeriod
		next := min(vt, at)
		if lag := time.Since(start) - next; lag > maxLag {
			start, vn, an = time.Now(), 0, 0
			continue
		}
		timer.Reset(max(0, next-time.Since(start)))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if vt == next {
			if p.keyframe.Swap(false) || pos == len(p.media.video) {
				pos = 0
			}
			f := p.media.video[pos]
			ts := p.log.base + uint32(frameNo)*p.media.videoTicks
			p.log.record(ts, time.Now())
			n, _ := v.write(p.video, f, ts, true)
			p.count(n, f)
			frameNo, vn, pos = frameNo+1, vn+1, pos+1
		}
		if at == next {
			f := p.media.audio[audioNo%int64(len(p.media.audio))]
			n, _ := a.write(p.audio, f, audioBase+uint32(audioNo)*audioTicks, false)
			p.count(n, f)
			audioNo, an = audioNo+1, an+1
		}
	}
}

func (p *publisher) count(n int, f frame) {
	if n == len(f.payloads) {
		p.sentBytes.Add(int64(f.bytes))
	}
	p.sentPackets.Add(int64(n))
}
