package loadtest

import (
	"fmt"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/stagehand-rt/stagehand/synth"
)

// loopSeconds is the media loop's length: two GOPs of the synth encoder,
// whose keyframes fall every two seconds, so the loop starts on one.
const loopSeconds = 4

// mtu is the largest RTP payload made, under any path's MTU with SRTP.
const mtu = 1200

// frame is one encoded video frame or audio packet, packetized.
type frame struct {
	payloads [][]byte
	bytes    int // payload bytes, all packets
}

// mediaLoop is the encoded media every publisher replays: video from a
// keyframe, 20 ms Opus packets. Read-only once made, so shared.
type mediaLoop struct {
	video, audio []frame
	fps          int
	videoTicks   uint32 // RTP ticks per video frame (90 kHz)
	videoMime    string
}

// audioTicks and audioPeriod are one Opus packet's duration.
const (
	audioTicks  = synth.AudioFrame
	audioPeriod = 20 * time.Millisecond
)

// collector keeps a synth writer's samples.
type collector struct{ samples [][]byte }

func (c *collector) WriteSample(s media.Sample) error {
	c.samples = append(c.samples, s.Data)
	return nil
}

// encodeLoop encodes loopSeconds of the test pattern and tone once.
func encodeLoop(c Config) (*mediaLoop, error) {
	codec, mime := synth.VP8, "video/VP8"
	if c.VideoCodec == "h264" {
		codec, mime = synth.H264, "video/H264"
	}
	src, err := synth.New(synth.Config{Width: c.Width, Height: c.Height, FPS: c.FPS, VideoCodec: codec,
		VideoBitrate: c.VideoBitrate, Label: "stagehand load"})
	if err != nil {
		return nil, fmt.Errorf("media loop: %w", err)
	}
	defer src.Close()
	var v, a collector
	if err := src.Generate(loopSeconds*c.FPS, &v, &a); err != nil {
		return nil, fmt.Errorf("media loop: %w", err)
	}
	l := &mediaLoop{fps: c.FPS, videoTicks: uint32(90000 / c.FPS), videoMime: mime}
	var vp rtp.Payloader = &codecs.VP8Payloader{}
	if codec == synth.H264 {
		vp = &codecs.H264Payloader{}
	}
	l.video = packetize(vp, v.samples)
	l.audio = packetize(&codecs.OpusPayloader{}, a.samples)
	if len(l.video) == 0 || len(l.audio) == 0 {
		return nil, fmt.Errorf("media loop: the encoders made %d video frames and %d audio packets",
			len(l.video), len(l.audio))
	}
	return l, nil
}

func packetize(p rtp.Payloader, samples [][]byte) []frame {
	out := make([]frame, 0, len(samples))
	for _, s := range samples {
		f := frame{payloads: p.Payload(mtu, s)}
		for _, b := range f.payloads {
			f.bytes += len(b)
		}
		if len(f.payloads) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// videoTime is when video frame i is due, counted so that durations add up
// exactly.
func (l *mediaLoop) videoTime(i int64) time.Duration {
	return time.Duration(i * int64(time.Second) / int64(l.fps))
}
