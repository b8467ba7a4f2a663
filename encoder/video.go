package encoder

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// Video encodes I420 frames to H.264 with libx264.
type Video struct {
	cfg  VideoConfig
	cc   *astiav.CodecContext
	pkt  *astiav.Packet
	next int64 // presentation timestamp of the next frame, in frames
}

// NewVideo opens a libx264 encoder for cfg (defaults applied). Close it.
func NewVideo(cfg VideoConfig) (*Video, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec := astiav.FindEncoderByName("libx264")
	if codec == nil {
		return nil, errors.New("libx264 encoder not found: FFmpeg must be built with libx264")
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("allocate libx264 context")
	}
	v := &Video{cfg: cfg, cc: cc}
	cc.SetWidth(cfg.Width)
	cc.SetHeight(cfg.Height)
	cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	cc.SetTimeBase(astiav.NewRational(1, cfg.Framerate))
	cc.SetFramerate(astiav.NewRational(cfg.Framerate, 1))
	cc.SetBitRate(int64(cfg.Bitrate))
	cc.SetGopSize(cfg.KeyframeInterval)
	// FLV and MP4 want SPS/PPS as extradata; MPEG-TS segments want them in
	// band on every keyframe, which repeat-headers keeps doing.
	cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))

	opts := astiav.NewDictionary()
	defer opts.Free()
	for k, val := range map[string]string{
		"preset":       cfg.Preset,
		"tune":         "zerolatency",
		"maxrate":      strconv.Itoa(cfg.Bitrate),
		"bufsize":      strconv.Itoa(cfg.Bitrate), // one second of VBV: bounded bursts for RTMP
		"bf":           "0",
		"keyint_min":   strconv.Itoa(cfg.KeyframeInterval),
		"sc_threshold": "0", // no scene-cut keyframes: they would break segment alignment
		"forced-idr":   "1", // forced keyframes are IDR, so every segment starts decodable
		"x264-params":  "repeat-headers=1",
	} {
		if err := opts.Set(k, val, 0); err != nil {
			v.Close()
			return nil, fmt.Errorf("libx264 option %s=%s: %w", k, val, err)
		}
	}
	if err := cc.Open(codec, opts); err != nil {
		v.Close()
		return nil, fmt.Errorf("open libx264 %dx%d@%d %d bps: %w", cfg.Width, cfg.Height, cfg.Framerate, cfg.Bitrate, err)
	}
	v.pkt = astiav.AllocPacket()
	return v, nil
}

// Config returns the settings in use, defaults applied.
func (v *Video) Config() VideoConfig { return v.cfg }

// TimeBase is the time base of the packets' timestamps: one frame.
func (v *Video) TimeBase() astiav.Rational { return v.cc.TimeBase() }

// CodecParameters describes the stream for a muxer.
func (v *Video) CodecParameters(cp *astiav.CodecParameters) error {
	return v.cc.ToCodecParameters(cp)
}

// Encode encodes f as the next frame and passes every packet that comes out
// to emit, which must not keep the packet after it returns (Ref it to keep
// it). Encode sets f's timestamp and picture type: the frame count makes the
// timestamp, and every KeyframeInterval-th frame is forced to be a keyframe.
func (v *Video) Encode(f *astiav.Frame, emit func(*astiav.Packet) error) error {
	if f.Width() != v.cfg.Width || f.Height() != v.cfg.Height {
		return fmt.Errorf("encode: frame is %dx%d, encoder %dx%d", f.Width(), f.Height(), v.cfg.Width, v.cfg.Height)
	}
	f.SetPts(v.next)
	if v.next%int64(v.cfg.KeyframeInterval) == 0 {
		f.SetPictureType(astiav.PictureTypeI)
	} else {
		f.SetPictureType(astiav.PictureTypeNone)
	}
	v.next++
	if err := v.cc.SendFrame(f); err != nil {
		return fmt.Errorf("encode frame %d: %w", v.next-1, err)
	}
	return drain(v.cc, v.pkt, emit)
}

// Flush drains the frames the encoder still holds. Encode may not be called after it.
func (v *Video) Flush(emit func(*astiav.Packet) error) error {
	if err := v.cc.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("flush video encoder: %w", err)
	}
	return drain(v.cc, v.pkt, emit)
}

// Close frees the encoder.
func (v *Video) Close() {
	if v.pkt != nil {
		v.pkt.Free()
		v.pkt = nil
	}
	if v.cc != nil {
		v.cc.Free()
		v.cc = nil
	}
}

// Boxed once: converting astiav's negative error codes to error allocates,
// and drain runs for every frame.
var (
	errAgain error = astiav.ErrEagain
	errEOF   error = astiav.ErrEof
)

// drain hands every packet the encoder has ready to emit, reusing pkt.
func drain(cc *astiav.CodecContext, pkt *astiav.Packet, emit func(*astiav.Packet) error) error {
	for {
		err := cc.ReceivePacket(pkt)
		if errors.Is(err, errAgain) || errors.Is(err, errEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("receive packet: %w", err)
		}
		err = emit(pkt)
		pkt.Unref()
		if err != nil {
			return err
		}
	}
}
