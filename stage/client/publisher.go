package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Publisher is a WHIP publication. Write encoded samples to Video and
// Audio; they keep their identity when the publication reconnects (a
// track is bound to each connection in turn), so the writer never notices.
//
// A Publisher reconnects by itself (unless PublishOptions.Reconnect.Off):
// when its connection is lost (2 s without a packet from the stage, ICE
// failure, or the stage closing it as a draining node does), or when
// Reconnect asks, it offers again to the same WHIP URL with the same token,
// swaps the new connection in and asks the encoder for a keyframe. A
// refusal retrying cannot cure (a revoked token after
// DisconnectParticipant, a deleted stage) ends it at once.
type Publisher struct {
	Video *webrtc.TrackLocalStaticSample // nil without video; with Simulcast, the highest layer
	Audio *webrtc.TrackLocalStaticSample // nil without audio
	// Layers are the video's encodings with Simulcast, low to high (RIDs
	// q, h, f: SimulcastRIDs); Video is the last.
	Layers []*webrtc.TrackLocalStaticSample

	whip, token string
	o           PublishOptions
	tags        *streamTags   // with Simulcast
	layers      []*layerTrack // Layers, as bound to each connection
	api         *webrtc.API
	log         *slog.Logger

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	kick      chan struct{} // Reconnect's request, if one is pending
	done      chan struct{} // closed when run returns
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	mu         sync.Mutex
	cur        *session
	err        error
	reconnects int
}

// PublishOptions say what a Publisher sends.
type PublishOptions struct {
	Options
	// VideoCodec is webrtc.MimeTypeVP8 (default) or webrtc.MimeTypeH264;
	// NoVideo and NoAudio leave a kind out.
	VideoCodec       string
	NoVideo, NoAudio bool
	// OnKeyframeRequest is called when a receiver asks for a keyframe
	// (PLI or FIR relayed by the stage), and after each reconnection; the
	// encoder should send one.
	OnKeyframeRequest func()
	// Simulcast sends the video as three encodings (layers), RIDs q, h
	// and f, low to high: write each layer's samples to Publisher.Layers.
	Simulcast bool
	// OnLayerKeyframeRequest, with Simulcast, is called instead of
	// OnKeyframeRequest when a receiver asks one layer (by RID) for a
	// keyframe.
	OnLayerKeyframeRequest func(rid string)
	// Tracks, when set, are published instead of the sample tracks, which
	// VideoCodec, NoVideo and NoAudio then do not shape (Video and Audio
	// stay nil): a caller that packetizes RTP itself (the load generator)
	// passes TrackLocalStaticRTP tracks. OnKeyframeRequest hears the video
	// tracks' keyframe requests.
	Tracks []webrtc.TrackLocal
	// Reconnect bounds reconnecting (on by default).
	Reconnect Reconnect
	// Logger defaults to slog.Default.
	Logger *slog.Logger
}

// Publish joins the stage at whipURL with a PUBLISH token and returns once
// the connection is established. A failure another attempt may cure (the
// stage is moving between nodes: 503, a refused connection) is retried
// within ctx and PublishOptions.Reconnect.Within; a refusal is returned
// at once.
func Publish(ctx context.Context, whipURL, tok string, o PublishOptions) (*Publisher, error) {
	var tags *streamTags
	if o.Simulcast && !o.NoVideo && len(o.Tracks) == 0 {
		tags = &streamTags{}
	}
	wapi, err := newAPI(o.Options, tags)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Publisher{whip: whipURL, token: tok, o: o, api: wapi, tags: tags,
		log:  log.With("component", "publish", "whip", whipURL),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	if err := p.makeTracks(); err != nil {
		return nil, err
	}
	s, _, err := p.connect(ctx, nil, time.Now().Add(o.Reconnect.within()))
	if err != nil {
		p.wg.Wait()
		return nil, err
	}
	p.cur = s
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.run()
	return p, nil
}

func (p *Publisher) makeTracks() error {
	if len(p.o.Tracks) > 0 {
		return nil
	}
	var err error
	if !p.o.NoVideo {
		codec := p.o.VideoCodec
		if codec == "" {
			codec = webrtc.MimeTypeVP8
		}
		capab := webrtc.RTPCodecCapability{MimeType: codec, ClockRate: 90000}
		if strings.EqualFold(codec, webrtc.MimeTypeH264) {
			capab.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
		}
		if !p.o.Simulcast {
			if p.Video, err = webrtc.NewTrackLocalStaticSample(capab, "video", "stagehand"); err != nil {
				return fmt.Errorf("video track: %w", err)
			}
		} else {
			for _, rid := range SimulcastRIDs {
				l, err := webrtc.NewTrackLocalStaticSample(capab, "video", "stagehand", webrtc.WithRTPStreamID(rid))
				if err != nil {
					return fmt.Errorf("video layer %s: %w", rid, err)
				}
				p.Layers = append(p.Layers, l)
				p.layers = append(p.layers, &layerTrack{TrackLocalStaticSample: l, tags: p.tags})
			}
			p.Video = p.Layers[len(p.Layers)-1]
		}
	}
	if !p.o.NoAudio {
		capab := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
		if p.Audio, err = webrtc.NewTrackLocalStaticSample(capab, "audio", "stagehand"); err != nil {
			return fmt.Errorf("audio track: %w", err)
		}
	}
	return nil
}

// attach adds the tracks to a new connection, with a reader of each
// sender's RTCP that ends when the connection closes.
func (p *Publisher) attach(pc *webrtc.PeerConnection) error {
	for _, t := range p.tracks() {
		tr, err := pc.AddTransceiverFromTrack(t,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fmt.Errorf("add %s track: %w", t.Kind(), err)
		}
		var onKeyframe func(uint32)
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			onKeyframe = p.keyframeRequested(tr.Sender())
			if len(p.layers) > 0 && t == webrtc.TrackLocal(p.layers[0]) {
				for i, l := range p.layers {
					l.tr.Store(tr)
					if i == 0 {
						continue
					}
					if err := tr.Sender().AddEncoding(l); err != nil {
						return fmt.Errorf("add video layer %s: %w", l.RID(), err)
					}
					// The sender's RTCP is read per encoding: ReadRTCP
					// reads the first's.
					rid, sender := l.RID(), tr.Sender()
					p.wg.Go(func() {
						readRTCP(func() ([]rtcp.Packet, error) {
							pkts, _, err := sender.ReadSimulcastRTCP(rid)
							return pkts, err
						}, onKeyframe)
					})
				}
			}
		}
		sender := tr.Sender()
		p.wg.Go(func() {
			readRTCP(func() ([]rtcp.Packet, error) {
				pkts, _, err := sender.ReadRTCP()
				return pkts, err
			}, onKeyframe)
		})
	}
	return nil
}

// SimulcastRIDs are the RIDs of a simulcast publication's layers, low to
// high: quarter, half and full size, as Chrome's.
var SimulcastRIDs = []string{"q", "h", "f"}

// keyframeRequested returns what a keyframe request for one of a video
// sender's SSRCs calls: OnLayerKeyframeRequest with its layer's RID, or
// OnKeyframeRequest.
func (p *Publisher) keyframeRequested(s *webrtc.RTPSender) func(ssrc uint32) {
	return func(ssrc uint32) {
		if f := p.o.OnLayerKeyframeRequest; f != nil && len(p.Layers) > 0 {
			for _, e := range s.GetParameters().Encodings {
				if uint32(e.SSRC) == ssrc {
					f(e.RID)
					return
				}
			}
		}
		if p.o.OnKeyframeRequest != nil {
			p.o.OnKeyframeRequest()
		}
	}
}

// tracks are what the publication sends: the caller's, or its sample tracks.
func (p *Publisher) tracks() []webrtc.TrackLocal {
	if len(p.o.Tracks) > 0 {
		return p.o.Tracks
	}
	var ts []webrtc.TrackLocal
	if len(p.layers) > 0 {
		ts = append(ts, p.layers[0]) // the others are its sender's further encodings
	} else if p.Video != nil {
		ts = append(ts, p.Video)
	}
	if p.Audio != nil {
		ts = append(ts, p.Audio)
	}
	return ts
}

// detach stops a lost connection's senders: the tracks' samples then go
// only to live connections, and a write never fails on the dead one.
func detach(pc *webrtc.PeerConnection) {
	for _, s := range pc.GetSenders() {
		_ = s.ReplaceTrack(nil)
	}
}

// dial makes one connection to the WHIP URL.
func (p *Publisher) dial(ctx context.Context) (*session, error) {
	s, err := newSession(p.api, p.token, p.o.Options)
	if err != nil {
		return nil, err
	}
	if err := p.attach(s.pc); err != nil {
		_ = s.pc.Close()
		return nil, err
	}
	if err := s.establish(ctx, p.whip); err != nil {
		return nil, err
	}
	return s, nil
}

// attemptTimeout bounds one attempt: an offer whose ICE never completes
// must not use up the whole outage.
const attemptTimeout = 15 * time.Second

// connect dials until a connection is up, retrying what may be cured
// until deadline. old, the lost connection, is DELETEd when the stage
// answers 409 (it still holds it). It returns the attempts made.
func (p *Publisher) connect(ctx context.Context, old *session, deadline time.Time) (*session, int, error) {
	b := newBackoff()
	var last error // the last failure that was not the deadline's
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithDeadline(ctx, earliest(deadline, time.Now().Add(attemptTimeout)))
		s, err := p.dial(actx)
		cancel()
		if err == nil {
			return s, attempt, nil
		}
		if !errors.Is(err, context.DeadlineExceeded) || last == nil {
			last = err
		}
		var se *StatusError
		conflict := errors.As(err, &se) && se.Status == http.StatusConflict
		if conflict && old != nil && old.Resource() != "" {
			p.log.Info("the stage still holds the earlier session; deleting it", "session", old.Resource())
			old.drop()
			continue
		}
		// A first join refused with 409: someone else publishes as this
		// participant, which waiting does not change.
		if p.o.Reconnect.Off || !retryable(err) || (conflict && old == nil) || ctx.Err() != nil {
			return nil, attempt, err
		}
		p.log.Info("publish attempt failed", "attempt", attempt, "error", err)
		if !wait(ctx, b.delay(floorOf(err)), deadline) {
			return nil, attempt, fmt.Errorf("no connection after %d attempts: %w", attempt, last)
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// run watches the current connection and replaces it when lost, until
// Close or a reconnection gives up.
func (p *Publisher) run() {
	defer p.wg.Done()
	defer close(p.done)
	for {
		cur := p.current()
		lost := true
		select {
		case <-p.ctx.Done():
			return
		case <-cur.done:
		case <-p.kick:
			lost = false
		}
		if p.ctx.Err() != nil {
			return
		}
		if p.o.Reconnect.Off {
			p.fail(cur, errors.New("client: the connection to the stage was lost"))
			return
		}
		if err := p.reconnect(cur, lost); err != nil {
			p.fail(cur, err)
			return
		}
	}
}

// reconnect replaces cur with a new connection. A lost cur stops sending
// at once; one asked to move serves until the new one is up.
func (p *Publisher) reconnect(cur *session, lost bool) error {
	start := time.Now()
	if lost {
		p.log.Warn("publication lost; reconnecting")
		detach(cur.pc)
	} else {
		p.log.Info("publication moving, as asked")
	}
	s, attempts, err := p.connect(p.ctx, cur, start.Add(p.o.Reconnect.within()))
	if err != nil {
		if p.ctx.Err() != nil {
			return nil // Close came first
		}
		if !lost && !isClosed(cur.done) {
			p.log.Warn("publication could not move; staying where it is", "error", err)
			return nil
		}
		return fmt.Errorf("client: reconnect to %s: %w", p.whip, err)
	}
	p.mu.Lock()
	p.cur = s
	p.reconnects++
	p.mu.Unlock()
	cur.drop()
	if p.o.OnKeyframeRequest != nil {
		p.o.OnKeyframeRequest()
	}
	took := time.Since(start)
	p.log.Info("publication reconnected", "attempts", attempts, "took", took.Round(time.Millisecond))
	if f := p.o.Reconnect.OnReconnect; f != nil {
		f(attempts, took)
	}
	return nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (p *Publisher) fail(cur *session, err error) {
	if p.ctx.Err() != nil {
		return
	}
	p.log.Warn("publication ended", "error", err)
	_ = cur.pc.Close()
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *Publisher) current() *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// readRTCP reads a sender's RTCP so that interceptors (NACK responses)
// run, and passes keyframe requests on; it ends when the connection
// closes.
func readRTCP(read func() ([]rtcp.Packet, error), onKeyframe func(ssrc uint32)) {
	for {
		pkts, err := read()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if onKeyframe == nil {
				continue
			}
			switch p := p.(type) {
			case *rtcp.PictureLossIndication:
				onKeyframe(p.MediaSSRC)
			case *rtcp.FullIntraRequest:
				onKeyframe(p.MediaSSRC)
			}
		}
	}
}

// Reconnect makes the publication move now, as when the events channel
// says the stage's node is leaving (stage.MsgReconnect); the current
// connection serves until the new one is up.
func (p *Publisher) Reconnect() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Reconnects is how many times the publication reconnected.
func (p *Publisher) Reconnects() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reconnects
}

// Done is closed when the publication has ended for good: Close was
// called, or the connection was lost and could not be made again (see
// Err). Close is still to be called then.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Err says why the publication ended once Done is closed: the lost
// connection, or the last reconnection attempt's failure (a *StatusError
// when the stage refused). It is nil while the publication runs, and when
// Close ended it.
func (p *Publisher) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Close leaves the stage (DELETE) and closes the connection; it returns
// once every goroutine of the Publisher has ended.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.cancel()
		<-p.done
		p.closeErr = p.current().close(ctx)
		p.wg.Wait()
	})
	return p.closeErr
}
