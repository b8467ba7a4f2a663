package encoder

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/avframe"
)

// Audio encodes 48 kHz stereo planar-float PCM to AAC-LC with FFmpeg's
// native encoder.
type Audio struct {
	cfg  AudioConfig
	cc   *astiav.CodecContext
	pkt  *astiav.Packet
	next int64 // timestamp of the next frame, in samples
}

// NewAudio opens an AAC encoder. Close it.
func NewAudio(cfg AudioConfig) (*Audio, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec := astiav.FindEncoderByName("aac")
	if codec == nil {
		return nil, errors.New("aac encoder not found")
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("allocate aac context")
	}
	a := &Audio{cfg: cfg, cc: cc}
	cc.SetSampleFormat(astiav.SampleFormatFltp)
	cc.SetSampleRate(AudioSampleRate)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	cc.SetBitRate(int64(cfg.Bitrate))
	cc.SetTimeBase(astiav.NewRational(1, AudioSampleRate))
	cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	if err := cc.Open(codec, nil); err != nil {
		a.Close()
		return nil, fmt.Errorf("open aac encoder: %w", err)
	}
	a.pkt = astiav.AllocPacket()
	return a, nil
}

// FrameSize is the number of samples per channel every frame but the last must carry.
func (a *Audio) FrameSize() int { return a.cc.FrameSize() }

// TimeBase is the time base of the packets' timestamps: one sample.
func (a *Audio) TimeBase() astiav.Rational { return a.cc.TimeBase() }

// NewFrame allocates a frame of the shape Encode takes (FrameSize samples,
// planar float, stereo, 48 kHz), to be filled and reused; the caller
// frees it.
func (a *Audio) NewFrame() (*astiav.Frame, error) {
	f := astiav.AllocFrame()
	f.SetNbSamples(a.FrameSize())
	f.SetSampleFormat(astiav.SampleFormatFltp)
	f.SetSampleRate(AudioSampleRate)
	f.SetChannelLayout(astiav.ChannelLayoutStereo)
	if err := f.AllocBuffer(0); err != nil {
		f.Free()
		return nil, fmt.Errorf("audio frame: %w", err)
	}
	// Silence, not whatever the allocator left: a NaN there makes the AAC
	// encoder refuse the frame.
	for ch := range 2 {
		clear(avframe.AudioPlane(f, ch))
	}
	return f, nil
}

// CodecParameters describes the stream for a muxer.
func (a *Audio) CodecParameters(cp *astiav.CodecParameters) error {
	return a.cc.ToCodecParameters(cp)
}

// Encode encodes f (FrameSize samples, planar float, stereo, 48 kHz) and
// passes every packet out to emit. It sets f's timestamp from the samples
// encoded so far.
func (a *Audio) Encode(f *astiav.Frame, emit func(*astiav.Packet) error) error {
	if f.SampleFormat() != astiav.SampleFormatFltp || f.SampleRate() != AudioSampleRate {
		return fmt.Errorf("encode audio: frame is %s at %d Hz, want fltp at %d Hz",
			f.SampleFormat(), f.SampleRate(), AudioSampleRate)
	}
	f.SetPts(a.next)
	a.next += int64(f.NbSamples())
	if err := a.cc.SendFrame(f); err != nil {
		return fmt.Errorf("encode audio at sample %d: %w", a.next-int64(f.NbSamples()), err)
	}
	return drain(a.cc, a.pkt, emit)
}

// Flush drains the encoder. Encode may not be called after it.
func (a *Audio) Flush(emit func(*astiav.Packet) error) error {
	if err := a.cc.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("flush audio encoder: %w", err)
	}
	return drain(a.cc, a.pkt, emit)
}

// Close frees the encoder.
func (a *Audio) Close() {
	if a.pkt != nil {
		a.pkt.Free()
		a.pkt = nil
	}
	if a.cc != nil {
		a.cc.Free()
		a.cc = nil
	}
}
