package recording

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/thumbnail"
	"github.com/stagehand-rt/stagehand/trackdecode"
)

// fps is the output clock of transcoded video and of the audio encoder.
const fps = 30

// Subscription asks the publisher for a keyframe (stage/client's).
type Subscription interface {
	RequestKeyframe(tr *webrtc.TrackRemote) error
}

// mediaConfig is one run's settings.
type mediaConfig struct {
	Writer         *ivsrec.Participant // nil: no HLS (mediaTypes NONE)
	Thumbs         *thumbnail.Writer   // nil: no thumbnails
	Video          bool                // the run records video (AUDIO_VIDEO with a video track)
	SegmentSeconds int
	ParticipantID  string
	OnActive       func() // the first packet went into the recording
	Log            *slog.Logger
}

// media is one run: a publishing span of the participant, from its tracks
// to the writer's run and the thumbnails. Audio is mixed (one source, gaps
// filled with silence) and encoded on an output clock that starts with
// the run; H.264 video is remuxed with its RTP timestamps put on that
// clock; VP8 is decoded, held and encoded to H.264 at fps on the same
// clock.
type media struct {
	cfg    mediaConfig
	start  time.Time // media time 0
	mixer  *compositor.Mixer
	aenc   *encoder.Audio
	aframe *astiav.Frame
	apar   *astiav.CodecParameters
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once // OnActive

	mu     sync.Mutex // the fields below: track goroutines and the clock
	opened bool       // the writer's run is open
	// transcoding (VP8)
	held, enc *astiav.Frame
	venc      *encoder.Video
	vpar      *astiav.CodecParameters
	sws       *astiav.SoftwareScaleContext
	scaled    *astiav.Frame
	firstTick int64
	// remuxing (H.264)
	pkt        *astiav.Packet
	pending    []byte // the first keyframe, until its size is known
	pendingTS  uint32
	pendingAt  time.Time
	lastTS     uint32
	pts        int64 // 90 kHz, on the run's clock
	tsStarted  bool
	writeFails int
}

func newMedia(cfg mediaConfig) (_ *media, err error) {
	m := &media{cfg: cfg, start: time.Now(), mixer: compositor.NewMixer()}
	defer func() {
		if err != nil {
			m.free()
		}
	}()
	m.mixer.SetParticipants([]string{cfg.ParticipantID})
	m.held, m.enc, m.pkt = astiav.AllocFrame(), astiav.AllocFrame(), astiav.AllocPacket()
	if cfg.Writer != nil {
		if m.aenc, err = encoder.NewAudio(encoder.AudioConfig{}); err != nil {
			return nil, err
		}
		if m.aframe, err = m.aenc.NewFrame(); err != nil {
			return nil, err
		}
		m.apar = astiav.AllocCodecParameters()
		if err = m.aenc.CodecParameters(m.apar); err != nil {
			return nil, err
		}
		if !cfg.Video {
			if err = m.openRun(nil, astiav.Rational{}, "", 0, 0); err != nil {
				return nil, err
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Go(func() { m.clock(ctx) })
	return m, nil
}

// openRun opens the writer's run: video (if vpar) then audio.
func (m *media) openRun(vpar *astiav.CodecParameters, vtb astiav.Rational, codecs string, w, h int) error {
	rc := ivsrec.RunConfig{Start: m.start, FPS: fps, Bandwidth: encoder.DefaultAudioBitrate}
	if vpar != nil {
		rc.Streams = append(rc.Streams, sink.Stream{Params: vpar, TimeBase: vtb})
		rc.Video, rc.Codecs, rc.Width, rc.Height = true, codecs+",", w, h
		rc.Bandwidth += bitrate(w, h)
	}
	rc.Streams = append(rc.Streams, sink.Stream{Params: m.apar, TimeBase: m.aenc.TimeBase()})
	rc.Codecs += ivsrec.AACCodec
	if err := m.cfg.Writer.BeginRun(rc); err != nil {
		return err
	}
	m.opened = true
	return nil
}

// bitrate of transcoded video: 2.5 Mbps at 720p30, by pixel count.
func bitrate(w, h int) int { return max(200_000, w*h*fps*9/100) }

// audioIndex is the audio stream's index in the run.
func (m *media) audioIndex() int {
	if m.cfg.Video {
		return 1
	}
	return 0
}

// clock encodes audio, and transcoded video, at the media clock until ctx
// ends.
func (m *media) clock(ctx context.Context) {
	t := time.NewTicker(time.Second / fps)
	defer t.Stop()
	mixed := 0
	for k := int64(0); ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.tickVideo(k)
		if m.aenc == nil {
			continue
		}
		target := int(time.Since(m.start) * encoder.AudioSampleRate / time.Second)
		for fs := m.aenc.FrameSize(); mixed+fs <= target; mixed += fs {
			if err := m.mixer.Mix(m.aframe); err != nil {
				m.fail("mix", err)
				continue
			}
			if err := m.aenc.Encode(m.aframe, m.emitAudio); err != nil {
				m.fail("encode audio", err)
			}
		}
	}
}

func (m *media) emitAudio(p *astiav.Packet) error {
	m.mu.Lock()
	opened := m.opened
	m.mu.Unlock()
	if !opened {
		return nil
	}
	m.write(p, m.audioIndex(), m.aenc.TimeBase(), false)
	return nil
}

// write hands a packet to the writer; a refused packet (a timestamp out of
// order, say) is dropped and logged, the recording goes on.
func (m *media) write(p *astiav.Packet, i int, tb astiav.Rational, key bool) {
	if err := m.cfg.Writer.Write(p, i, tb, key); err != nil {
		m.fail("write", err)
		return
	}
	m.once.Do(func() {
		if m.cfg.OnActive != nil {
			m.cfg.OnActive()
		}
	})
}

func (m *media) fail(what string, err error) {
	m.mu.Lock()
	m.writeFails++
	n := m.writeFails
	m.mu.Unlock()
	if n <= 3 || n%100 == 0 {
		m.cfg.Log.Warn("participant recording: "+what, "error", err, "failures", n)
	}
}

// Track reads one subscribed track until it ends.
func (m *media) Track(tr *webrtc.TrackRemote, sub Subscription) {
	if tr.Kind() == webrtc.RTPCodecTypeAudio {
		m.audio(tr)
		return
	}
	if !m.cfg.Video && m.cfg.Thumbs == nil {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	}
	m.video(tr, sub)
}

func (m *media) audio(tr *webrtc.TrackRemote) {
	dec, err := trackdecode.NewAudio(tr.Codec().MimeType)
	if err != nil {
		m.cfg.Log.Warn("audio track left out", "error", err)
		return
	}
	defer dec.Close()
	dec.Run(tr, func(f *astiav.Frame, _ uint32) { _ = m.mixer.Push(m.cfg.ParticipantID, f) })
}

func (m *media) video(tr *webrtc.TrackRemote, sub Subscription) {
	mime := tr.Codec().MimeType
	dec, err := trackdecode.NewVideo(mime)
	if err != nil {
		m.cfg.Log.Warn("video track left out", "error", err)
		return
	}
	defer dec.Close()
	remux := strings.EqualFold(mime, trackdecode.MimeTypeH264)
	if remux && m.cfg.Writer != nil && m.cfg.Video {
		dec.SetAccessUnitHandler(m.accessUnit)
	}
	dec.Run(tr, func(f *astiav.Frame, _ uint32) { m.picture(f, remux) }, func() { _ = sub.RequestKeyframe(tr) })
}

// accessUnit remuxes one H.264 frame; only keyframes are decoded.
func (m *media) accessUnit(data []byte, ts uint32, key bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.opened {
		if key {
			// Its picture gives the size the init segment needs.
			m.pending, m.pendingTS, m.pendingAt = append(m.pending[:0], data...), ts, time.Now()
		}
		return key
	}
	m.remux(data, ts, key, time.Now())
	return key
}

// remux writes one H.264 access unit with a 90 kHz timestamp on the run's
// clock: the first one by its arrival, the next ones by their RTP
// timestamps (unwrapped).
func (m *media) remux(data []byte, ts uint32, key bool, at time.Time) {
	if !m.tsStarted {
		m.tsStarted, m.lastTS = true, ts
		m.pts = int64(at.Sub(m.start) * 90000 / time.Second)
	}
	m.pts += int64(int32(ts - m.lastTS))
	m.lastTS = ts
	if err := m.pkt.FromData(data); err != nil {
		m.cfg.Log.Warn("remux: packet", "error", err)
		return
	}
	defer m.pkt.Unref()
	m.pkt.SetPts(m.pts)
	m.pkt.SetDts(m.pts)
	if key {
		m.pkt.SetFlags(m.pkt.Flags().Add(astiav.PacketFlagKey))
	}
	m.mu.Unlock() // the writer has its own lock; the clock's audio may wait on ours
	m.write(m.pkt, 0, astiav.NewRational(1, 90000), key)
	m.mu.Lock()
}

// picture takes a decoded picture: thumbnails, the size of a remuxed
// stream, the frame transcoding holds.
func (m *media) picture(f *astiav.Frame, remux bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.Thumbs != nil {
		if err := m.cfg.Thumbs.Offer(f, time.Since(m.start)); err != nil {
			m.cfg.Log.Warn("thumbnail", "error", err)
		}
	}
	if m.cfg.Writer == nil || !m.cfg.Video {
		return
	}
	if remux {
		if !m.opened && m.pending != nil && f.KeyFrame() {
			if err := m.openRemux(f.Width(), f.Height()); err != nil {
				m.cfg.Log.Warn("remux: open run", "error", err)
				return
			}
			m.remux(m.pending, m.pendingTS, true, m.pendingAt)
		}
		return
	}
	m.held.Unref()
	if err := m.held.Ref(f); err != nil {
		m.cfg.Log.Warn("hold picture", "error", err)
	}
}

// openRemux opens the run for H.264 passed through: the parameter sets
// of the first keyframe become the init segment's avcC.
func (m *media) openRemux(w, h int) error {
	ps := ivsrec.AVCParameterSets(m.pending)
	if ps.SPS == nil || ps.PPS == nil {
		return errors.New("the first keyframe has no SPS and PPS")
	}
	if m.vpar == nil {
		m.vpar = astiav.AllocCodecParameters()
	}
	m.vpar.SetMediaType(astiav.MediaTypeVideo)
	m.vpar.SetCodecID(astiav.CodecIDH264)
	m.vpar.SetWidth(w)
	m.vpar.SetHeight(h)
	extra := append(append([]byte{0, 0, 0, 1}, ps.SPS...), append([]byte{0, 0, 0, 1}, ps.PPS...)...)
	if err := m.vpar.SetExtraData(extra); err != nil {
		return err
	}
	return m.openRun(m.vpar, astiav.NewRational(1, 90000), ivsrec.AVCCodec(extra), w, h)
}

// tickVideo encodes the held picture (transcoding) as frame k of the clock.
func (m *media) tickVideo(k int64) {
	m.mu.Lock()
	if m.cfg.Writer == nil || !m.cfg.Video || m.held.Width() == 0 {
		m.mu.Unlock()
		return
	}
	if m.venc == nil {
		if err := m.openTranscode(k); err != nil {
			m.mu.Unlock()
			m.fail("open video encoder", err)
			return
		}
	}
	frame, err := m.fit()
	m.mu.Unlock()
	if err != nil {
		m.fail("scale", err)
		return
	}
	if err := m.venc.Encode(frame, m.emitVideo); err != nil {
		m.fail("encode video", err)
	}
}

// fit returns the held picture at the encoder's size, referenced in m.enc
// so that decoding may go on while it is encoded.
func (m *media) fit() (*astiav.Frame, error) {
	cfg := m.venc.Config()
	m.enc.Unref()
	if m.held.Width() == cfg.Width && m.held.Height() == cfg.Height {
		return m.enc, m.enc.Ref(m.held)
	}
	// The publisher changed resolution: scale to the run's.
	if m.sws == nil || m.scaled == nil {
		sws, err := astiav.CreateSoftwareScaleContext(m.held.Width(), m.held.Height(), m.held.PixelFormat(),
			cfg.Width, cfg.Height, astiav.PixelFormatYuv420P,
			astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
		if err != nil {
			return nil, err
		}
		m.sws, m.scaled = sws, astiav.AllocFrame()
	}
	if err := m.sws.ScaleFrame(m.held, m.scaled); err != nil {
		return nil, err
	}
	return m.enc, m.enc.Ref(m.scaled)
}

func (m *media) openTranscode(k int64) error {
	w, h := m.held.Width()&^1, m.held.Height()&^1
	seg := m.cfg.SegmentSeconds
	v, err := encoder.NewVideo(encoder.VideoConfig{Width: w, Height: h, Framerate: fps, Bitrate: bitrate(w, h),
		KeyframeInterval: fps * (2 - seg%2)}) // keyframes on every segment boundary
	if err != nil {
		return err
	}
	m.vpar = astiav.AllocCodecParameters()
	if err := v.CodecParameters(m.vpar); err != nil {
		v.Close()
		return err
	}
	if err := m.openRun(m.vpar, v.TimeBase(), ivsrec.AVCCodec(m.vpar.ExtraData()), w, h); err != nil {
		v.Close()
		return err
	}
	m.venc, m.firstTick = v, k
	return nil
}

// emitVideo writes a transcoded packet, its timestamps moved from the
// encoder's frame count to the clock's tick.
func (m *media) emitVideo(p *astiav.Packet) error {
	p.SetPts(p.Pts() + m.firstTick)
	p.SetDts(p.Dts() + m.firstTick)
	m.write(p, 0, m.venc.TimeBase(), p.Flags().Has(astiav.PacketFlagKey))
	return nil
}

// close stops the clock, flushes the encoders into the run and ends it.
// The tracks must have ended.
func (m *media) close() error {
	m.cancel()
	m.wg.Wait()
	var err error
	if m.venc != nil {
		err = m.venc.Flush(m.emitVideo)
	}
	if m.aenc != nil && m.opened {
		err = errors.Join(err, m.aenc.Flush(m.emitAudio))
	}
	if m.cfg.Writer != nil {
		err = errors.Join(err, m.cfg.Writer.EndRun())
	}
	m.free()
	return err
}

func (m *media) free() {
	for _, f := range []*astiav.Frame{m.held, m.enc, m.scaled, m.aframe} {
		if f != nil {
			f.Free()
		}
	}
	m.held, m.enc, m.scaled, m.aframe = nil, nil, nil, nil
	if m.sws != nil {
		m.sws.Free()
		m.sws = nil
	}
	if m.pkt != nil {
		m.pkt.Free()
		m.pkt = nil
	}
	if m.venc != nil {
		m.venc.Close()
		m.venc = nil
	}
	if m.aenc != nil {
		m.aenc.Close()
		m.aenc = nil
	}
	for _, p := range []*astiav.CodecParameters{m.vpar, m.apar} {
		if p != nil {
			p.Free()
		}
	}
	m.vpar, m.apar = nil, nil
}
