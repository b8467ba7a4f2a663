package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stage"
)

// storeTimeout bounds a store call made for a connection.
const storeTimeout = 5 * time.Second

// refusal is a publish the ingest refuses or ends on bad input. When it
// concerns a known participant it is recorded as an IVS error event
// (event, code) in the stage's session.
type refusal struct {
	event, code string
	msg         string
}

func (r *refusal) Error() string { return r.msg }

var (
	errUnpublished  = errors.New("the publisher unpublished")
	errDisconnected = errors.New(
		"the stage ended the participant (DisconnectParticipant, stage deleted or server closing)")
)

// publisher is one RTMP(S) connection, from handshake to leaving the
// stage. Its methods run on the connection's goroutine.
type publisher struct {
	s         *Server
	nc        net.Conn
	sc        *gortmplib.ServerConn
	secure    bool
	log       *slog.Logger
	connected time.Time

	cfg     ivs.IngestConfiguration
	id      string // the ingest configuration's
	stageID string
	local   *stage.Local
	publish func(...*webrtcTrack) error // local.Publish; a test's own in fuzzing

	avc          *avcConfig
	asc          []byte // AAC AudioSpecificConfig
	started      bool
	audioWaiting int // AAC frames seen before any video
	video        *videoSender
	audio        *audioSender
	videoSent    int
	badFrames    int
	counted      uint64 // received bytes already in the metric
}

func (p *publisher) protocol() string {
	if p.secure {
		return "RTMPS"
	}
	return "RTMP"
}

// handle serves one connection until the publisher stops, is refused, or
// the server closes.
func (s *Server) handle(nc net.Conn, secure bool) {
	p := &publisher{s: s, nc: nc, secure: secure, connected: time.Now()}
	p.log = s.log.With("remote", nc.RemoteAddr().String(), "protocol", p.protocol())
	defer p.free()
	defer func() {
		// A bug reached by one publisher's bytes (here or in the RTMP
		// library) ends that connection, not the server with the API.
		if v := recover(); v != nil {
			s.metrics.connections.WithLabelValues(outcomePanic).Inc()
			p.log.Error("ingest connection panicked; dropped", "ingest", p.id, "participant", p.cfg.ParticipantID,
				"panic", scrub(fmt.Sprint(v)), "stack", string(debug.Stack()))
		}
	}()
	defer func() { // after a panic too
		p.countBytes()
		if p.started {
			s.metrics.publishing.Dec()
		}
	}()
	err := p.run(s.ctx)
	var r *refusal
	switch {
	case errors.As(err, &r):
		s.metrics.connections.WithLabelValues(outcomeRefused).Inc()
		s.metrics.refusals.WithLabelValues(r.code).Inc()
		p.log.Info("ingest refused", "ingest", p.id, "participant", p.cfg.ParticipantID, "code", r.code,
			"reason", scrub(r.msg))
	case err == nil, errors.Is(err, errUnpublished):
		s.metrics.connections.WithLabelValues(outcomeEnded).Inc()
		p.log.Info("RTMP publish ended", "ingest", p.id, "participant", p.cfg.ParticipantID,
			"duration", time.Since(p.connected).Round(time.Millisecond), "video_frames", p.videoSent, "bad_frames", p.badFrames)
	default:
		s.metrics.connections.WithLabelValues(outcomeFailed).Inc()
		p.log.Info("RTMP connection ended", "ingest", p.id, "participant", p.cfg.ParticipantID,
			"duration", time.Since(p.connected).Round(time.Millisecond), "video_frames", p.videoSent,
			"error", scrub(err.Error()))
	}
}

func (p *publisher) run(ctx context.Context) error {
	_ = p.nc.SetDeadline(time.Now().Add(p.s.cfg.HandshakeTimeout))
	p.sc = &gortmplib.ServerConn{RW: p.nc}
	if err := p.sc.Initialize(); err != nil {
		return fmt.Errorf("RTMP handshake: %w", err)
	}
	if err := p.sc.AcceptConn(); err != nil {
		return fmt.Errorf("RTMP connect: %w", connectError(err))
	}
	if !p.sc.Publish {
		_ = p.sc.RejectAction()
		return &refusal{code: "PLAY_REFUSED", msg: "play refused: the ingest takes publishers only (subscribe over WHEP)"}
	}
	if err := p.authorize(ctx, path.Base(p.sc.URL.Path)); err != nil {
		_ = p.sc.RejectAction()
		return err
	}
	release, err := p.s.claim(ctx, p.id)
	if err != nil {
		_ = p.sc.RejectAction()
		if errors.Is(err, errKeyInUse) {
			return p.refuse("JOIN_ERROR", "REUSE_OF_STREAM_KEY",
				"the stream key is already publishing; stop the other publisher first")
		}
		return err
	}
	defer release()
	p.local, err = p.s.stage.JoinLocal(ctx, stage.LocalParticipant{
		StageID: p.stageID, StageARN: p.cfg.StageARN, ParticipantID: p.cfg.ParticipantID,
		UserID: p.cfg.UserID, Attributes: p.cfg.Attributes, Protocol: p.protocol(), IngestConfigurationARN: p.cfg.ARN,
	})
	if err != nil {
		_ = p.sc.RejectAction()
		return &refusal{code: "STAGE_REFUSED", msg: "the stage refused the participant: " + err.Error()}
	}
	p.publish = p.local.Publish
	reason := "the RTMP publisher stopped"
	defer func() { p.local.Leave(reason) }()
	if err := p.sc.AcceptAction(); err != nil {
		reason = "the RTMP connection failed"
		return fmt.Errorf("RTMP publish: %w", err)
	}
	p.log.Info("RTMP publisher joined", "ingest", p.id, "stage", p.stageID, "participant", p.cfg.ParticipantID,
		"after", time.Since(p.connected).Round(time.Millisecond))
	stop := p.watch()
	err = p.readMedia()
	stop()
	if err != nil && !errors.Is(err, errUnpublished) {
		reason = "the RTMP publish ended: " + scrub(err.Error())
	}
	return err
}

// connectError keeps what an RTMP connect error says of its kind, never
// the command or URL the library quotes in it: an encoder's tcUrl and
// stream name carry the stream key, and a tcUrl that does not parse comes
// back whole in the error.
func connectError(err error) error {
	var ne net.Error
	var ue *url.Error
	switch { // *url.Error is a net.Error too: it goes first
	case errors.As(err, &ue):
		return errors.New("the tcUrl and stream name do not form a URL")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne):
		return err
	}
	kind, _, _ := strings.Cut(err.Error(), ":")
	return errors.New(scrub(kind))
}

// authorize finds the ingest configuration of the stream key and checks
// that this connection may publish with it.
func (p *publisher) authorize(ctx context.Context, key string) error {
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	c, id, err := p.s.lookup(lctx, key)
	if errors.Is(err, errUnknownKey) {
		app := scrub(strings.Trim(path.Dir(p.sc.URL.Path), "/"))
		return &refusal{code: "UNKNOWN_STREAM_KEY", msg: fmt.Sprintf("unknown stream key %q (app %q)", redact(key), app)}
	}
	if err != nil {
		return err
	}
	p.cfg, p.id = c, id
	if c.StageARN == "" {
		return &refusal{code: "NO_STAGE",
			msg: "ingest configuration " + c.ARN + " is attached to no stage (update-ingest-configuration --stage-arn)"}
	}
	a, err := ivs.ParseARN(c.StageARN)
	if err != nil {
		return fmt.Errorf("ingest configuration %s: stage ARN: %w", c.ARN, err)
	}
	p.stageID = a.ID
	if !p.secure && !c.InsecureIngest {
		return p.refuse("JOIN_ERROR", "INVALID_PROTOCOL",
			"plain RTMP refused: ingest configuration "+c.ARN+" takes RTMPS only (create it with insecureIngest for RTMP)")
	}
	return nil
}

// refuse records the IVS error event of a refusal and returns it.
func (p *publisher) refuse(event, code, msg string) error {
	if p.stageID != "" {
		p.s.stage.RecordLocalError(p.stageID, p.cfg.ParticipantID, event, code)
	}
	return &refusal{event: event, code: code, msg: msg}
}

// watch closes the connection when the stage ends the participant, which
// ends readMedia; stop ends the watch.
func (p *publisher) watch() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-p.local.Done():
			p.nc.Close()
		case <-done:
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// readMedia forwards the publisher's media until it stops.
func (p *publisher) readMedia() error {
	for {
		_ = p.nc.SetDeadline(time.Now().Add(p.s.cfg.ReadTimeout))
		msg, err := p.sc.Read()
		p.countBytes()
		if err != nil {
			return p.readError(err)
		}
		if err := p.onMessage(msg); err != nil {
			return err
		}
	}
}

func (p *publisher) readError(err error) error {
	select {
	case <-p.local.Done():
		return errDisconnected
	default:
	}
	msg := err.Error()
	switch {
	case errors.Is(err, io.EOF):
		return errUnpublished
	case strings.Contains(msg, "unsupported video codec"):
		return p.refuse("PUBLISH_ERROR", "INVALID_VIDEO_CODEC", msg+": send H.264")
	case strings.Contains(msg, "unsupported audio codec"):
		return p.refuse("PUBLISH_ERROR", "INVALID_AUDIO_CODEC", msg+": send AAC")
	}
	return fmt.Errorf("read RTMP: %w", err)
}

func (p *publisher) onMessage(msg message.Message) error {
	switch m := msg.(type) {
	case *message.Video:
		return p.onVideo(m)
	case *message.Audio:
		return p.onAudio(m)
	case *message.VideoExSequenceStart, *message.VideoExCodedFrames, *message.VideoExFramesX,
		*message.VideoExMultitrack, *message.VideoExMetadata:
		return p.refuse("PUBLISH_ERROR", "INVALID_VIDEO_CODEC",
			"Enhanced RTMP video (HEVC, AV1, VP9, multitrack) is not supported: send H.264")
	case *message.AudioExSequenceStart, *message.AudioExCodedFrames, *message.AudioExMultitrack,
		*message.AudioExMultichannelConfig:
		return p.refuse("PUBLISH_ERROR", "INVALID_AUDIO_CODEC",
			"Enhanced RTMP audio (Opus, FLAC, AC-3, multitrack) is not supported: send AAC")
	case *message.CommandAMF0:
		switch m.Name {
		case "deleteStream", "FCUnpublish", "closeStream":
			return errUnpublished
		}
	}
	return nil
}

func (p *publisher) onVideo(m *message.Video) error {
	if m.Codec != message.CodecH264 {
		return p.refuse("PUBLISH_ERROR", "INVALID_VIDEO_CODEC", "H.265 video is not supported: send H.264")
	}
	switch m.Type {
	case message.VideoTypeConfig:
		cfg, err := newAVCConfig(m.AVCConfig)
		if err != nil {
			return p.refuse("PUBLISH_ERROR", "INVALID_INPUT", err.Error())
		}
		p.avc = cfg
		if p.video != nil {
			p.video.cfg = cfg
		}
	case message.VideoTypeAU:
		if m.PTSDelta != 0 {
			// WebRTC has no B-frames; IVS refuses them too.
			return p.refuse("PUBLISH_ERROR", "B_FRAME_PRESENT", "the H.264 stream has B-frames (composition time offsets): "+
				"encode without B-frames (e.g. -bf 0 or baseline profile)")
		}
		if err := p.start(); err != nil {
			return err
		}
		sent, err := p.video.write(m.DTS, m.AU)
		if err != nil {
			p.bad("video", err)
		}
		if sent {
			p.videoSent++
			p.s.metrics.videoFrames.Inc()
		}
	}
	return nil
}

// maxAudioBeforeVideo bounds the AAC frames taken while waiting for video
// (about 2 s): a stream without video is refused rather than left joined.
const maxAudioBeforeVideo = 100

func (p *publisher) onAudio(m *message.Audio) error {
	if m.Codec != message.CodecMPEG4Audio {
		return p.refuse("PUBLISH_ERROR", "INVALID_AUDIO_CODEC", "this audio codec is not supported: send AAC")
	}
	switch m.AACType {
	case message.AudioAACTypeConfig:
		if m.AACConfig == nil {
			return p.refuse("PUBLISH_ERROR", "INVALID_INPUT", "empty AAC sequence header (no AudioSpecificConfig)")
		}
		asc, err := m.AACConfig.Marshal()
		if err != nil {
			return p.refuse("PUBLISH_ERROR", "INVALID_INPUT", "bad AAC sequence header: "+err.Error())
		}
		if p.audio != nil && string(asc) != string(p.asc) {
			if err := p.audio.reconfigure(asc, p.s.cfg.OpusBitrate); err != nil {
				return err
			}
		}
		p.asc = asc
	case message.AudioAACTypeAU:
		if !p.started {
			if p.audioWaiting++; p.avc == nil && p.audioWaiting > maxAudioBeforeVideo {
				return p.refuse("PUBLISH_ERROR", "INVALID_VIDEO_CODEC", "no H.264 video: the stream has audio only")
			}
			return nil // audio starts with the video
		}
		if p.audio == nil {
			return nil // no AAC sequence header before the media started
		}
		if err := p.audio.write(m.AU); err != nil {
			p.bad("audio", err)
		}
	}
	return nil
}

// start publishes the tracks at the first video frame: the sequence
// headers, which FFmpeg and OBS send first, say which there are.
func (p *publisher) start() error {
	if p.started {
		return nil
	}
	if p.avc == nil {
		return p.refuse("PUBLISH_ERROR", "INVALID_VIDEO_CODEC", "H.264 frames before any H.264 sequence header")
	}
	tracks, err := p.openTracks()
	if err != nil {
		return err
	}
	if err := p.publish(tracks...); err != nil {
		return err
	}
	p.started = true
	p.s.metrics.publishing.Inc()
	p.log.Info("RTMP publishing", "ingest", p.id, "stage", p.stageID, "participant", p.cfg.ParticipantID,
		"audio", p.audio != nil, "after", time.Since(p.connected).Round(time.Millisecond))
	return nil
}

func (p *publisher) openTracks() ([]*webrtcTrack, error) {
	pid := p.cfg.ParticipantID
	vt := stage.NewLocalTrack(h264Codec, "video", pid)
	p.video = newVideoSender(vt, p.avc)
	tracks := []*webrtcTrack{vt}
	if p.asc != nil {
		at := stage.NewLocalTrack(opusCodec, "audio", pid)
		var err error
		if p.audio, err = newAudioSender(at, p.asc, p.s.cfg.OpusBitrate); err != nil {
			return nil, p.refuse("PUBLISH_ERROR", "INVALID_AUDIO_CODEC", "the AAC stream cannot be decoded: "+err.Error())
		}
		tracks = append(tracks, at)
	}
	return tracks, nil
}

// bad counts a frame that could not be forwarded; the stream goes on.
func (p *publisher) bad(kind string, err error) {
	p.badFrames++
	p.s.metrics.badFrames.WithLabelValues(kind).Inc()
	if p.badFrames == 1 || p.badFrames%100 == 0 {
		p.log.Warn("malformed frame skipped", "ingest", p.id, "kind", kind, "count", p.badFrames, "error", err)
	}
}

// countBytes adds what the connection received since the last call to
// the metric.
func (p *publisher) countBytes() {
	if p.sc == nil {
		return
	}
	n := p.sc.BytesReceived()
	p.s.metrics.bytes.Add(float64(n - p.counted))
	p.counted = n
}

// free releases the codecs; the connection is closed by the server.
func (p *publisher) free() {
	if p.audio != nil {
		p.audio.close()
	}
}
