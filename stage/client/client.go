// Package client joins a stage from Go: WHIP publish, WHEP subscribe to one
// publisher, and the events channel. `stagehand publish`, composition
// workers and tests use it; any WHIP/WHEP client works as well.
//
// A stage is hosted by one stage node at a time, and moves when that node
// drains or dies. A Publisher and Follow get back on their own: offers
// follow a 307 to the node hosting the stage (with the token), a 503 or a
// refused connection is retried with backoff (250 ms doubling to 5 s,
// jittered) for at most Reconnect.Within, and a 4xx that retrying cannot
// cure ends them at once. A plain Subscription does not reconnect: Follow
// makes a new one.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
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

// httpClient is the client of every request: o.HTTPClient or one with a
// 10 s timeout, following redirects with the token. A stage node redirects
// a WHIP or WHEP offer (307) to the node hosting the stage; Go drops
// Authorization on a redirect to another host, which would make the offer
// unauthorized there.
func (o Options) httpClient() *http.Client {
	c := http.Client{Timeout: 10 * time.Second}
	if o.HTTPClient != nil {
		c = *o.HTTPClient
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", len(via))
		}
		if auth := via[0].Header.Get("Authorization"); auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &c
}

// maxRedirects bounds a chain of node redirects: one is the rule (the
// node that answered knows the host), a few allow for a stage moving
// meanwhile.
const maxRedirects = 5

// ICE timeouts of every client connection; the keepalive makes the stage
// answer often enough that 2 s of silence means it is gone.
const (
	iceDisconnected = 2 * time.Second
	iceFailed       = 3 * time.Second
	iceKeepalive    = 500 * time.Millisecond
)

// ignoreDTLSClose is set by tests only (export_test.go).
var ignoreDTLSClose atomic.Bool

// newAPI makes the peer connections' API; with tags, a publisher's that
// sends simulcast.
func newAPI(o Options, tags *streamTags) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	if tags != nil {
		// The RIDs of the encodings: a=rid, and mid and rtp-stream-id in
		// their packets.
		if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
			return nil, fmt.Errorf("simulcast header extensions: %w", err)
		}
		ir.Add(ridTaggerFactory{tags})
	}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, fmt.Errorf("interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	// A stage node that vanished (killed, unplugged) is noticed after 2 s
	// without traffic rather than pion's 5 s: the connection is then made
	// again, to the node that hosts the stage next.
	se.SetICETimeouts(iceDisconnected, iceFailed, iceKeepalive)
	// A test that plays a killed node has the goodbye of a closed one
	// ignored: only silence is left to notice.
	se.DisableCloseByDTLS(ignoreDTLSClose.Load())
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

// StatusError is a refusal by the stage server, read back from its
// response; find it with errors.As.
type StatusError = refusal.Error

// refused wraps the server's refusal as "stage refused: <status> <message>".
func refused(status int, msg string) error {
	return fmt.Errorf("stage refused: %d %w", status, refusal.New(status, msg))
}

// Subscription receives one publisher's tracks over WHEP.
type Subscription struct {
	*session
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
	wapi, err := newAPI(o, nil)
	if err != nil {
		return nil, err
	}
	ss, err := newSession(wapi, tok, o)
	if err != nil {
		return nil, err
	}
	s := &Subscription{ss}
	ss.pc.OnTrack(onTrack)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := ss.pc.AddTransceiverFromKind(k,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = ss.pc.Close()
			return nil, err
		}
	}
	if err := ss.establish(ctx, whepURL); err != nil {
		return nil, err
	}
	return s, nil
}

// LayerURL is whepURL asking for a simulcast layer: "low", "medium",
// "high" (the default), a RID, or a height such as "360p" (the smallest
// layer at least that high). A publisher without simulcast has one layer,
// which every name gives.
func LayerURL(whepURL, layer string) string {
	if layer == "" {
		return whepURL
	}
	sep := "?"
	if strings.Contains(whepURL, "?") {
		sep = "&"
	}
	return whepURL + sep + "layer=" + url.QueryEscape(layer)
}

// SetLayer switches the subscription's simulcast tracks to a layer (named
// as for LayerURL) from that layer's next keyframe. It returns the RID
// each simulcast track switches to, by track id (none when the publisher
// has no simulcast track).
func (s *Subscription) SetLayer(ctx context.Context, layer string) (map[string]string, error) {
	body, err := json.Marshal(stage.LayerRequest{Layer: layer})
	if err != nil {
		return nil, err
	}
	resource := s.Resource()
	if resource == "" {
		return nil, errors.New("the subscription is closed")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, resource, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	s.header(req)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.opts.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, refused(resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var ans stage.LayerAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("layer answer: %w", err)
	}
	return ans.Tracks, nil
}

// RequestKeyframe sends a picture loss indication for the track.
func (s *Subscription) RequestKeyframe(t *webrtc.TrackRemote) error {
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
}

// RequestRetransmission asks for the track's packets with these sequence
// numbers again (a generic NACK), as a receiver that lost them does.
func (s *Subscription) RequestRetransmission(t *webrtc.TrackRemote, seqs ...uint16) error {
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: uint32(t.SSRC()),
		Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}})
}

// Done is closed when the connection is lost (no packet for 2 s), fails or
// closes (the publisher left).
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
	return DialEventsWith(ctx, eventsURL, tok, Options{})
}

// DialEventsWith is DialEvents through o.HTTPClient (its TLS settings: a
// stage with a certificate of a private CA).
func DialEventsWith(ctx context.Context, eventsURL, tok string, o Options) (*Events, error) {
	u, err := url.Parse(eventsURL)
	if err != nil {
		return nil, fmt.Errorf("events URL: %w", err)
	}
	q := u.Query()
	q.Set("access_token", tok)
	u.RawQuery = q.Encode()
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: o.HTTPClient})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			return nil, refused(resp.StatusCode, string(bytes.TrimSpace(b)))
		}
		return nil, fmt.Errorf("events channel %s: %w", eventsURL, redact(err, tok))
	}
	conn.SetReadLimit(1 << 20)
	return &Events{conn: conn}, nil
}

// redact takes the token out of an error that quotes the URL carrying it:
// errors are logged. (A JWT is URL-safe: the query holds it verbatim.)
func redact(err error, tok string) error {
	if tok == "" {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), tok, "<token>"))
}

// Next returns the next message.
func (e *Events) Next(ctx context.Context) (stage.Message, error) {
	var m stage.Message
	err := wsjson.Read(ctx, e.conn, &m)
	return m, err
}

// Close closes the connection.
func (e *Events) Close() error { return e.conn.Close(websocket.StatusNormalClosure, "") }
