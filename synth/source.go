// Package synth generates a synthetic participant's media: a test pattern
// (a background colour, a label and a running clock) encoded to VP8 or H.264,
// and a sine tone encoded to Opus, as pion media.Samples ready for a
// *webrtc.TrackLocalStaticSample. `stagehand publish` uses it to publish demo,
// test and load participants over WHIP.
//
// The picture is drawn by FFmpeg's lavfi sources and drawtext filter through
// go-astiav. drawtext finds its font through fontconfig ("Sans"); where no
// font can be loaded (a bare container), the picture falls back to no text:
// the label becomes a full-width bar in a colour derived from it, and a
// white box sliding along the bottom shows motion. Source.Text tells which.
//
// Video is encoded for real-time delivery: one encoded frame per picture, no
// B-frames, a keyframe every two seconds. VP8 uses libvpx's realtime deadline
// with error resilience; H.264 is libx264's constrained baseline with
// zerolatency tuning, in Annex-B with SPS/PPS before every keyframe. Audio is
// libopus at 48 kHz stereo in 20 ms packets.
//
// The package owns its encoders and its clock; it does not own tracks,
// connections or signalling.
package synth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/pion/webrtc/v4/pkg/media"
)

// SampleWriter receives encoded samples: one VP8 frame, H.264 access unit
// (Annex-B) or Opus packet each, with its duration. The writer owns
// Sample.Data. *webrtc.TrackLocalStaticSample satisfies it.
type SampleWriter interface {
	WriteSample(media.Sample) error
}

// ErrClosed is returned by Run and Generate on a closed Source.
var ErrClosed = errors.New("synth: source closed")

// maxLag is how far Run may fall behind its clock (a slow writer, a paused
// process) before it stops catching up and restarts its clock: a burst of
// stale frames helps no receiver.
const maxLag = 500 * time.Millisecond

// Source generates and encodes the media of one synthetic participant. Run
// and Generate continue one timeline and may not be called concurrently;
// Close may be called at any time.
type Source struct {
	cfg  Config
	log  *slog.Logger
	text bool

	video  *graph
	vEnc   *astiav.CodecContext
	vFrame *astiav.Frame
	vPkt   *astiav.Packet
	frames int64 // video frames encoded

	audio  *graph
	aEnc   *astiav.CodecContext
	aFrame *astiav.Frame
	aPkt   *astiav.Packet
	chunks int64 // audio frames encoded

	keyframe atomic.Bool // a keyframe was requested (a receiver's PLI)

	mu      sync.Mutex
	closed  bool
	running chan struct{} // closed when the current Run or Generate returns; nil when idle
	stop    context.CancelFunc
}

// New validates cfg, builds the filter graphs and opens the encoders. Close
// the Source.
func New(cfg Config) (*Source, error) {
	return newSource(cfg, true)
}

// newSource is New, with text drawing optional so that tests can exercise
// the no-font picture.
func newSource(cfg Config, text bool) (_ *Source, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bg, _ := parseColor(cfg.Color) // validated
	s := &Source{cfg: cfg, log: cfg.Logger.With("component", "synth")}
	defer func() {
		if err != nil {
			s.free()
		}
	}()
	if text && astiav.FindFilterByName("drawtext") != nil {
		// drawtext fails to initialise when fontconfig finds no font.
		if s.video, err = newGraph(videoDesc(cfg, bg, true), "buffersink"); err == nil {
			s.text = true
		} else {
			s.log.Debug("drawing without text", "err", err)
		}
	}
	if s.video == nil {
		if s.video, err = newGraph(videoDesc(cfg, bg, false), "buffersink"); err != nil {
			return nil, fmt.Errorf("synth: video pattern: %w", err)
		}
	}
	if s.audio, err = newGraph(audioDesc(cfg), "abuffersink"); err != nil {
		return nil, fmt.Errorf("synth: audio source: %w", err)
	}
	if s.vEnc, err = openVideoEncoder(cfg); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	if s.aEnc, err = openAudio(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	s.vFrame, s.aFrame = astiav.AllocFrame(), astiav.AllocFrame()
	s.vPkt, s.aPkt = astiav.AllocPacket(), astiav.AllocPacket()
	if s.vFrame == nil || s.aFrame == nil || s.vPkt == nil || s.aPkt == nil {
		return nil, errors.New("synth: allocate frames and packets")
	}
	return s, nil
}

// Config returns the configuration in use, defaults applied.
func (s *Source) Config() Config { return s.cfg }

// Text reports whether the picture carries text (the label and the clock),
// or the no-font fallback.
func (s *Source) Text() bool { return s.text }

func openVideoEncoder(cfg Config) (_ *astiav.CodecContext, err error) {
	name := "libvpx"
	gop := strconv.Itoa(2 * cfg.FPS)
	opts := map[string]string{
		"keyint_min": gop,
		// Realtime deadline, no look-ahead and no alt-ref frames: one
		// visible frame out per frame in, at once.
		"deadline":        "realtime",
		"cpu-used":        "8",
		"lag-in-frames":   "0",
		"auto-alt-ref":    "0",
		"error-resilient": "default",
	}
	if cfg.VideoCodec == H264 {
		name = "libx264"
		opts = map[string]string{
			"keyint_min":   gop,
			"preset":       "veryfast",
			"tune":         "zerolatency", // no B-frames, no look-ahead, no frame threads
			"profile":      "baseline",    // libx264's baseline is constrained baseline
			"sc_threshold": "0",           // keyframes on the cadence only
			"forced-idr":   "1",
			"bf":           "0",
			// Annex-B is libx264's output; without a global header it
			// writes SPS/PPS before every keyframe, so a receiver that joins
			// late or lost them can start decoding at the next keyframe.
			"x264-params": "repeat-headers=1",
		}
	}
	codec := astiav.FindEncoderByName(name)
	if codec == nil {
		return nil, fmt.Errorf("%s encoder not found", name)
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, fmt.Errorf("allocate %s context", name)
	}
	defer func() {
		if err != nil {
			cc.Free()
		}
	}()
	cc.SetWidth(cfg.Width)
	cc.SetHeight(cfg.Height)
	cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	cc.SetTimeBase(astiav.NewRational(1, cfg.FPS))
	cc.SetFramerate(astiav.NewRational(cfg.FPS, 1))
	cc.SetBitRate(int64(cfg.VideoBitrate))
	cc.SetGopSize(2 * cfg.FPS)
	// One thread each: a load test runs many sources side by side.
	cc.SetThreadCount(1)
	if err := openWith(cc, codec, opts); err != nil {
		return nil, fmt.Errorf("open %s %dx%d@%d: %w", name, cfg.Width, cfg.Height, cfg.FPS, err)
	}
	return cc, nil
}

// openAudio is a variable so that a test can make New fail half-way.
var openAudio = openOpus

func openOpus() (_ *astiav.CodecContext, err error) {
	codec := astiav.FindEncoderByName("libopus")
	if codec == nil {
		return nil, errors.New("libopus encoder not found")
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("allocate libopus context")
	}
	defer func() {
		if err != nil {
			cc.Free()
		}
	}()
	cc.SetSampleFormat(astiav.SampleFormatS16)
	cc.SetSampleRate(SampleRate)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	cc.SetBitRate(64_000)
	cc.SetTimeBase(astiav.NewRational(1, SampleRate))
	if err := openWith(cc, codec, map[string]string{"application": "audio", "frame_duration": "20"}); err != nil {
		return nil, fmt.Errorf("open libopus: %w", err)
	}
	if cc.FrameSize() != AudioFrame {
		return nil, fmt.Errorf("libopus frame size %d, want %d", cc.FrameSize(), AudioFrame)
	}
	return cc, nil
}

func openWith(cc *astiav.CodecContext, codec *astiav.Codec, opts map[string]string) error {
	d := astiav.NewDictionary()
	defer d.Free()
	for k, v := range opts {
		if err := d.Set(k, v, 0); err != nil {
			return fmt.Errorf("option %s=%s: %w", k, v, err)
		}
	}
	if err := cc.Open(codec, d); err != nil {
		return err
	}
	// avcodec_open2 hands back the options nobody took instead of failing:
	// a misspelt option would otherwise be silently ignored.
	if e := d.Get("", nil, astiav.NewDictionaryFlags(astiav.DictionaryFlagIgnoreSuffix)); e != nil {
		return fmt.Errorf("%s does not know option %s=%s", codec.Name(), e.Key(), e.Value())
	}
	return nil
}

// Run sends samples in real time until ctx ends or Close is called, then
// returns nil; it returns the first error of a writer or an encoder. Either
// writer may be nil, and its stream is then not generated. The schedule is
// an absolute clock started when Run starts (sample k is due at its media
// time), so pacing does not drift with the time spent encoding and
// writing. Run starts no goroutine.
func (s *Source) Run(ctx context.Context, video, audio SampleWriter) error {
	if video == nil && audio == nil {
		return errors.New("synth: run: no writer")
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	v0, a0 := s.frames, s.chunks
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		// The earliest sample due: every stream is a step behind it or
		// later.
		due := time.Duration(1<<63 - 1)
		if video != nil {
			due = s.videoTime(s.frames - v0)
		}
		if audio != nil {
			due = min(due, audioTime(s.chunks-a0))
		}
		now := time.Since(start)
		if behind := now - due; behind > maxLag {
			s.log.Warn("fell behind; restarting the clock", "behind", behind)
			start = start.Add(behind)
			now = due
		}
		next := time.Duration(1<<63 - 1)
		if video != nil {
			for ; s.videoTime(s.frames-v0) <= now; s.frames++ {
				if err := s.videoFrame(video); err != nil {
					return err
				}
			}
			next = s.videoTime(s.frames - v0)
		}
		if audio != nil {
			for ; audioTime(s.chunks-a0) <= now; s.chunks++ {
				if err := s.audioFrame(audio); err != nil {
					return err
				}
			}
			next = min(next, audioTime(s.chunks-a0))
		}
		timer.Reset(max(0, next-time.Since(start)))
	}
}

// Generate produces n video frames and the audio that spans them, as fast as
// the encoders go, for tests and load generation. Either writer may be nil.
// Close interrupts it; it then returns ErrClosed.
func (s *Source) Generate(n int, video, audio SampleWriter) error {
	ctx, done, err := s.begin(context.Background())
	if err != nil {
		return err
	}
	defer done()
	var vi, ai int64 // frames and audio frames of this call
	end := s.videoTime(int64(n))
	for vi < int64(n) || audio != nil && audioTime(ai) < end {
		if ctx.Err() != nil {
			return ErrClosed
		}
		// Interleave in media-time order, as Run would.
		if vi < int64(n) && (audio == nil || s.videoTime(vi) <= audioTime(ai)) {
			if video != nil {
				if err := s.videoFrame(video); err != nil {
					return err
				}
				s.frames++
			}
			vi++
			continue
		}
		if err := s.audioFrame(audio); err != nil {
			return err
		}
		s.chunks++
		ai++
	}
	return nil
}

// begin marks the Source busy; done marks it idle again.
func (s *Source) begin(parent context.Context) (context.Context, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	if s.running != nil {
		return nil, nil, errors.New("synth: already running")
	}
	ctx, cancel := context.WithCancel(parent)
	running := make(chan struct{})
	s.running, s.stop = running, cancel
	return ctx, func() {
		cancel()
		s.mu.Lock()
		s.running, s.stop = nil, nil
		s.mu.Unlock()
		close(running)
	}, nil
}

// videoTime is when frame i starts, counted so that durations add up
// exactly (30 fps does not divide a second in nanoseconds).
func (s *Source) videoTime(i int64) time.Duration {
	return time.Duration(i * int64(time.Second) / int64(s.cfg.FPS))
}

func audioTime(i int64) time.Duration {
	return time.Duration(i * AudioFrame * int64(time.Second) / SampleRate)
}

// RequestKeyframe makes the next video frame a keyframe, for a receiver
// that lost the picture (a PLI or FIR). Safe to call at any time.
func (s *Source) RequestKeyframe() { s.keyframe.Store(true) }

// videoFrame pulls the next picture and writes what the encoder makes of
// it: one sample, because neither encoder is allowed to delay frames.
func (s *Source) videoFrame(w SampleWriter) error {
	i := s.frames
	if err := s.video.sink.BuffersinkGetFrame(s.vFrame, astiav.NewBuffersinkFlags()); err != nil {
		return fmt.Errorf("synth: draw frame %d: %w", i, err)
	}
	s.vFrame.SetPts(i)
	// Forcing the cadence, rather than trusting the GOP size alone, keeps
	// keyframes on it across encoder decisions.
	if i%int64(2*s.cfg.FPS) == 0 || s.keyframe.Swap(false) {
		s.vFrame.SetPictureType(astiav.PictureTypeI)
	} else {
		s.vFrame.SetPictureType(astiav.PictureTypeNone)
	}
	err := s.vEnc.SendFrame(s.vFrame)
	s.vFrame.Unref()
	if err != nil {
		return fmt.Errorf("synth: encode frame %d: %w", i, err)
	}
	for {
		done, err := receive(s.vEnc, s.vPkt)
		if done || err != nil {
			return err
		}
		pts := s.vPkt.Pts()
		sample := media.Sample{Data: s.vPkt.Data(), Duration: s.videoTime(pts+1) - s.videoTime(pts)}
		s.vPkt.Unref()
		if err := w.WriteSample(sample); err != nil {
			return fmt.Errorf("synth: write video frame %d: %w", pts, err)
		}
	}
}

// audioFrame encodes the next 20 ms of audio.
func (s *Source) audioFrame(w SampleWriter) error {
	i := s.chunks
	if err := s.audio.sink.BuffersinkGetFrame(s.aFrame, astiav.NewBuffersinkFlags()); err != nil {
		return fmt.Errorf("synth: generate audio frame %d: %w", i, err)
	}
	s.aFrame.SetPts(i * AudioFrame)
	err := s.aEnc.SendFrame(s.aFrame)
	s.aFrame.Unref()
	if err != nil {
		return fmt.Errorf("synth: encode audio frame %d: %w", i, err)
	}
	for {
		done, err := receive(s.aEnc, s.aPkt)
		if done || err != nil {
			return err
		}
		n, pts := s.aPkt.Duration(), s.aPkt.Pts()
		if n <= 0 {
			n = AudioFrame
		}
		sample := media.Sample{Data: s.aPkt.Data(), Duration: time.Duration(n * int64(time.Second) / SampleRate)}
		s.aPkt.Unref()
		if err := w.WriteSample(sample); err != nil {
			return fmt.Errorf("synth: write audio packet at sample %d: %w", pts, err)
		}
	}
}

// Boxed once, so that comparing against them does not allocate per frame.
var (
	errAgain error = astiav.ErrEagain
	errEOF   error = astiav.ErrEof
)

// receive takes the next packet out of cc into pkt; done reports that the
// encoder has none ready. Packet.Data copies, so the sample owns its bytes
// and pkt is unreferenced before the writer runs.
func receive(cc *astiav.CodecContext, pkt *astiav.Packet) (done bool, err error) {
	err = cc.ReceivePacket(pkt)
	if errors.Is(err, errAgain) || errors.Is(err, errEOF) {
		return true, nil
	}
	if err != nil {
		return true, fmt.Errorf("synth: receive packet: %w", err)
	}
	return false, nil
}

// Close stops a Run or Generate in progress, waits for it to return and
// frees every FFmpeg object. It is safe to call more than once.
func (s *Source) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	running, stop := s.running, s.stop
	s.mu.Unlock()
	if running != nil {
		stop()
		<-running
	}
	s.free()
}

// free releases whatever New allocated; fields may be nil after a failed New.
func (s *Source) free() {
	for _, f := range []**astiav.Frame{&s.vFrame, &s.aFrame} {
		if *f != nil {
			(*f).Free()
			*f = nil
		}
	}
	for _, p := range []**astiav.Packet{&s.vPkt, &s.aPkt} {
		if *p != nil {
			(*p).Free()
			*p = nil
		}
	}
	for _, cc := range []**astiav.CodecContext{&s.vEnc, &s.aEnc} {
		if *cc != nil {
			(*cc).Free()
			*cc = nil
		}
	}
	s.video.free()
	s.audio.free()
	s.video, s.audio = nil, nil
}
