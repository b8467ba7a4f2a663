// Package testmedia encodes synthetic H.264/AAC streams with the real
// encoders, for tests of what consumes encoded packets (sinks, muxers).
package testmedia

import (
	"math"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/internal/avframe"
	"github.com/stagehand-rt/stagehand/layout"
)

// Options describes the stream; zero fields take small defaults.
type Options struct {
	Width, Height    int     // default 320x180
	Framerate        int     // default 30
	Seconds          float64 // default 4
	KeyframeInterval int     // frames; default 2 s
	Bitrate          int     // default 500 kbps
	NoAudio          bool
}

// Stream is an encoder pair whose parameters are known before encoding.
type Stream struct {
	Options
	Video, Audio                 *astiav.CodecParameters // Audio nil with NoAudio
	VideoTimeBase, AudioTimeBase astiav.Rational
	venc                         *encoder.Video
	aenc                         *encoder.Audio
}

// New opens the encoders; they are freed when the test ends.
func New(t testing.TB, o Options) *Stream {
	t.Helper()
	if o.Width == 0 {
		o.Width, o.Height = 320, 180
	}
	if o.Framerate == 0 {
		o.Framerate = 30
	}
	if o.Seconds == 0 {
		o.Seconds = 4
	}
	if o.KeyframeInterval == 0 {
		o.KeyframeInterval = 2 * o.Framerate
	}
	if o.Bitrate == 0 {
		o.Bitrate = 500_000
	}
	s := &Stream{Options: o}
	var err error
	s.venc, err = encoder.NewVideo(encoder.VideoConfig{Width: o.Width, Height: o.Height, Framerate: o.Framerate,
		Bitrate: o.Bitrate, KeyframeInterval: o.KeyframeInterval})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.venc.Close)
	s.Video = astiav.AllocCodecParameters()
	t.Cleanup(s.Video.Free)
	if err := s.venc.CodecParameters(s.Video); err != nil {
		t.Fatal(err)
	}
	s.VideoTimeBase = s.venc.TimeBase()
	if !o.NoAudio {
		if s.aenc, err = encoder.NewAudio(encoder.AudioConfig{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.aenc.Close)
		s.Audio = astiav.AllocCodecParameters()
		t.Cleanup(s.Audio.Free)
		if err := s.aenc.CodecParameters(s.Audio); err != nil {
			t.Fatal(err)
		}
		s.AudioTimeBase = s.aenc.TimeBase()
	}
	return s
}

// Run encodes the whole stream — a box moving over black, a 440 Hz tone —
// and hands every packet to emit (stream 0 video, 1 audio), interleaved in
// time order. onFrame, if set, runs before each video frame is encoded.
func (s *Stream) Run(t testing.TB, emit func(p *astiav.Packet, stream int), onFrame func(i int)) {
	t.Helper()
	video := func(p *astiav.Packet) error { emit(p, 0); return nil }
	audioOut := func(p *astiav.Packet) error { emit(p, 1); return nil }
	frame, err := compositor.NewFrame(layout.Size{W: s.Width, H: s.Height}, compositor.Black)
	if err != nil {
		t.Fatal(err)
	}
	defer frame.Free()
	var audio *astiav.Frame
	if s.aenc != nil {
		audio = astiav.AllocFrame()
		defer audio.Free()
		audio.SetNbSamples(s.aenc.FrameSize())
		audio.SetSampleFormat(astiav.SampleFormatFltp)
		audio.SetSampleRate(encoder.AudioSampleRate)
		audio.SetChannelLayout(astiav.ChannelLayoutStereo)
		if err := audio.AllocBuffer(0); err != nil {
			t.Fatal(err)
		}
	}
	samples := 0
	box := layout.Rect{W: 32, H: 32, Y: (s.Height / 3) &^ 1}
	for i := 0; float64(i) < s.Seconds*float64(s.Framerate); i++ {
		if onFrame != nil {
			onFrame(i)
		}
		compositor.FillRect(frame, box, compositor.Black)
		box.X = (i * 4) % (s.Width - box.W) &^ 1
		compositor.FillRect(frame, box, compositor.White)
		if err := s.venc.Encode(frame, video); err != nil {
			t.Fatal(err)
		}
		for audio != nil && float64(samples) < float64(i+1)/float64(s.Framerate)*encoder.AudioSampleRate {
			n := s.aenc.FrameSize()
			for ch := 0; ch < 2; ch++ {
				pcm := avframe.AudioPlane(audio, ch)
				for k := 0; k < n; k++ {
					v := math.Float32bits(float32(0.3 * math.Sin(2*math.Pi*440*float64(samples+k)/encoder.AudioSampleRate)))
					pcm[4*k], pcm[4*k+1], pcm[4*k+2], pcm[4*k+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
				}
			}
			if err := s.aenc.Encode(audio, audioOut); err != nil {
				t.Fatal(err)
			}
			samples += n
		}
	}
	if err := s.venc.Flush(video); err != nil {
		t.Fatal(err)
	}
	if s.aenc != nil {
		if err := s.aenc.Flush(audioOut); err != nil {
			t.Fatal(err)
		}
	}
}
