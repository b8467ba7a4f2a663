// Package client joins a stage from Go: WHIP publish, WHEP subscribe to one
// publisher, and the events channel. `stagehand publish`, composition
// workers and tests use it; any WHIP/WHEP client works as well.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/stage"
)

// Options tune a client's peer connection.
type Options struct {
	// ICEIPs, when set, are the only local addresses offered (127.0.0.1
	// in tests). Default: every interface.
	ICEIPs []string
	// UserAgent is sent with every request (the stage records it).
	UserAgent string
	// HTTPClient defaults to one with a 10 s timeout.
	HTTPClient *http.Client
}

func (o Options) httpClient() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func newAPI(o Options) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, fmt.Errorf("interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if len(o.ICEIPs) > 0 {
		allowed := map[string]bool{}
		for _, ip := range o.ICEIPs {
			allowed[net.ParseIP(ip).String()] = true
		}
		se.SetIPFilter(func(ip net.IP) bool { return allowed[ip.String()] })
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// session is a negotiated WHIP or WHEP peer connection and its resource.
type session struct {
	pc       *webrtc.PeerConnection
	resource string // absolute URL for DELETE
	token    string
	opts     Options
	done     chan struct{}
	doneOnce sync.Once
}

// offer sends the peer connection's offer to endpoint and applies the
// answer.
func (s *session) offer(ctx context.Context, endpoint string) error {
	gathered := webrtc.GatheringCompletePromise(s.pc)
	o, err := s.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	if err := s.pc.SetLocalDescription(o); err != nil {
		return fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(s.pc.LocalDescription().SDP))
	if err != nil {
		return err
	}
	s.header(req)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := s.opts.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	if resp.StatusCode != http.StatusCreated {
		return refused(resp.StatusCode, strings.TrimSpace(string(body)))
	}
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("the answer has no usable Location: %w", err)
	}
	s.resource = loc.String()
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer,
		SDP: string(body)}); err != nil {
		return fmt.Errorf("apply answer: %w", err)
	}
	return nil
}

func (s *session) header(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+s.token)
	if s.opts.UserAgent != "" {
		req.Header.Set("User-Agent", s.opts.UserAgent)
	}
}

func (s *session) watch() {
	s.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			s.doneOnce.Do(func() { close(s.done) })
		}
	})
}

// waitConnected waits for ICE and DTLS to complete.
func (s *session) waitConnected(ctx context.Context) error {
	connected := make(chan struct{})
	var once sync.Once
	prev := s.pc.ConnectionState()
	if prev == webrtc.PeerConnectionStateConnected {
		return nil
	}
	s.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			s.doneOnce.Do(func() { close(s.done) })
		}
	})
	select {
	case <-connected:
		return nil
	case <-s.done:
		return errors.New("the connection failed before it was established")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close DELETEs the resource (leaving the stage) and closes the peer
// connection.
func (s *session) close(ctx context.Context) error {
	var err error
	if s.resource != "" {
		req, rerr := http.NewRequestWithContext(ctx, http.MethodDelete, s.resource, nil)
		if rerr == nil {
			s.header(req)
			resp, derr := s.opts.httpClient().Do(req)
			if derr != nil {
				err = fmt.Errorf("DELETE %s: %w", s.resource, derr)
			} else {
				resp.Body.Close()
			}
		}
		s.resource = ""
	}
	return errors.Join(err, s.pc.Close())
}

// StatusError is a refusal by the stage server, read back from its
// response; find it with errors.As.
type StatusError = refusal.Error

// refused wraps the server's refusal as "stage refused: <status> <message>".
func refused(status int, msg string) error {
	return fmt.Errorf("stage refused: %d %w", status, refusal.New(status, msg))
}

// Publisher is a WHIP publication. Write encoded samples to Video and
// Audio.
type Publisher struct {
	session
	Video *webrtc.TrackLocalStaticSample // nil without video
	Audio *webrtc.TrackLocalStaticSample // nil without audio
}

// PublishOptions say what a Publisher sends.
type PublishOptions struct {
	Options
	// VideoCodec is webrtc.MimeTypeVP8 (default) or webrtc.MimeTypeH264;
	// NoVideo and NoAudio leave a kind out.
	VideoCodec       string
	NoVideo, NoAudio bool
	// OnKeyframeRequest is called when a receiver asks for a keyframe
	// (PLI or FIR relayed by the stage); the encoder should send one.
	OnKeyframeRequest func()
	// Tracks, when set, are published instead of the sample tracks, which
	// VideoCodec, NoVideo and NoAudio then do not shape (Video and Audio
	// stay nil): a caller that packetizes RTP itself (the load generator)
	// passes TrackLocalStaticRTP tracks. OnKeyframeRequest hears the video
	// tracks' keyframe requests.
	Tracks []webrtc.TrackLocal
}

// Publish joins the stage at whipURL with a PUBLISH token and returns once
// the connection is established.
func Publish(ctx context.Context, whipURL, tok string, o PublishOptions) (*Publisher, error) {
	wapi, err := newAPI(o.Options)
	if err != nil {
		return nil, err
	}
	pc, err := wapi.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &Publisher{session: session{pc: pc, token: tok, opts: o.Options, done: make(chan struct{})}}
	if err := p.addTracks(o); err != nil {
		_ = pc.Close()
		return nil, err
	}
	if err := p.offer(ctx, whipURL); err != nil {
		_ = pc.Close()
		return nil, err
	}
	if err := p.waitConnected(ctx); err != nil {
		_ = p.close(context.Background())
		return nil, err
	}
	p.watch()
	return p, nil
}

func (p *Publisher) addTracks(o PublishOptions) error {
	if len(o.Tracks) > 0 {
		return p.addOwnTracks(o)
	}
	add := func(capab webrtc.RTPCodecCapability, id string, onKeyframe func()) (*webrtc.TrackLocalStaticSample, error) {
		t, err := webrtc.NewTrackLocalStaticSample(capab, id, "stagehand")
		if err != nil {
			return nil, err
		}
		tr, err := p.pc.AddTransceiverFromTrack(t,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, err
		}
		go readRTCP(tr.Sender(), onKeyframe)
		return t, nil
	}
	var err error
	if !o.NoVideo {
		codec := o.VideoCodec
		if codec == "" {
			codec = webrtc.MimeTypeVP8
		}
		capab := webrtc.RTPCodecCapability{MimeType: codec, ClockRate: 90000}
		if strings.EqualFold(codec, webrtc.MimeTypeH264) {
			capab.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
		}
		if p.Video, err = add(capab, "video", o.OnKeyframeRequest); err != nil {
			return fmt.Errorf("video track: %w", err)
		}
	}
	if !o.NoAudio {
		if p.Audio, err = add(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
			"audio", nil); err != nil {
			return fmt.Errorf("audio track: %w", err)
		}
	}
	return nil
}

// addOwnTracks sends the caller's tracks.
func (p *Publisher) addOwnTracks(o PublishOptions) error {
	for _, t := range o.Tracks {
		tr, err := p.pc.AddTransceiverFromTrack(t,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fmt.Errorf("%s track %s: %w", t.Kind(), t.ID(), err)
		}
		var onKeyframe func()
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			onKeyframe = o.OnKeyframeRequest
		}
		go readRTCP(tr.Sender(), onKeyframe)
	}
	return nil
}

// readRTCP reads a sender's RTCP so that interceptors (NACK responses)
// run, and passes keyframe requests on; it ends when the connection
// closes.
func readRTCP(s *webrtc.RTPSender, onKeyframe func()) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if onKeyframe != nil {
					onKeyframe()
				}
			}
		}
	}
}

// Done is closed when the connection fails or closes (for instance after
// DisconnectParticipant).
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Close leaves the stage (DELETE) and closes the connection.
func (p *Publisher) Close(ctx context.Context) error { return p.close(ctx) }

// Subscription receives one publisher's tracks over WHEP.
type Subscription struct {
	session
}

// WHEPURL is where the stage whose WHIP endpoint is whipURL serves the
// tracks of participant id.
func WHEPURL(whipURL, participantID string) string {
	return strings.TrimSuffix(strings.TrimSuffix(whipURL, "/"), "/whip") + "/whep/" + url.PathEscape(participantID)
}

// Subscribe receives the tracks of the publisher at whepURL with a
// SUBSCRIBE token; onTrack is called for each track as its media starts.
func Subscribe(ctx context.Context, whepURL, tok string, o Options, onTrack func(*webrtc.TrackRemote,
	*webrtc.RTPReceiver)) (*Subscription, error) {
	wapi, err := newAPI(o)
	if err != nil {
		return nil, err
	}
	pc, err := wapi.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	s := &Subscription{session{pc: pc, token: tok, opts: o, done: make(chan struct{})}}
	pc.OnTrack(onTrack)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			return nil, err
		}
	}
	if err := s.offer(ctx, whepURL); err != nil {
		_ = pc.Close()
		return nil, err
	}
	if err := s.waitConnected(ctx); err != nil {
		_ = s.close(context.Background())
		return nil, err
	}
	s.watch()
	return s, nil
}

// RequestKeyframe sends a picture loss indication for the track.
func (s *Subscription) RequestKeyframe(t *webrtc.TrackRemote) error {
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
}

// Done is closed when the connection fails or closes (the publisher left).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Close stops receiving (DELETE) and closes the connection.
func (s *Subscription) Close(ctx context.Context) error { return s.close(ctx) }

// Events is a connection to a stage's events channel.
type Events struct {
	conn *websocket.Conn
}

// DialEvents connects to the events channel at eventsURL with any token of
// the stage. The first message is a snapshot.
func DialEvents(ctx context.Context, eventsURL, tok string) (*Events, error) {
	u, err := url.Parse(eventsURL)
	if err != nil {
		return nil, fmt.Errorf("events URL: %w", err)
	}
	q := u.Query()
	q.Set("access_token", tok)
	u.RawQuery = q.Encode()
	conn, resp, err := websocket.Dial(ctx, u.String(), nil)
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			return nil, refused(resp.StatusCode, string(bytes.TrimSpace(b)))
		}
		return nil, fmt.Errorf("events channel %s: %w", eventsURL, err)
	}
	conn.SetReadLimit(1 << 20)
	return &Events{conn: conn}, nil
}

// Next returns the next message.
func (e *Events) Next(ctx context.Context) (stage.Message, error) {
	var m stage.Message
	err := wsjson.Read(ctx, e.conn, &m)
	return m, err
}

// Close closes the connection.
func (e *Events) Close() error { return e.conn.Close(websocket.StatusNormalClosure, "") }
