package client

import (
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Simulcast sending. A receiver tells a simulcast track's encodings apart
// by the mid and rid header extensions of their packets (RFC 8852), which
// pion's sender does not write: layerTrack notes which SSRC each encoding
// is sent with, and ridTagger writes the two extensions into its packets.

// streamTags are the mid and rid of each simulcast SSRC of a publisher.
type streamTags struct{ m sync.Map } // uint32 SSRC -> streamTag

type streamTag struct{ mid, rid []byte }

// layerTrack is one encoding of a simulcast video track: the sample track
// the encoder writes, bound to each connection's sender in turn.
type layerTrack struct {
	*webrtc.TrackLocalStaticSample
	tags *streamTags
	tr   atomic.Pointer[webrtc.RTPTransceiver] // the current connection's, set before it binds
}

// Bind notes the SSRC the encoding is sent with on this connection.
func (l *layerTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	if tr := l.tr.Load(); tr != nil {
		l.tags.m.Store(uint32(ctx.SSRC()), streamTag{mid: []byte(tr.Mid()), rid: []byte(l.RID())})
	}
	return l.TrackLocalStaticSample.Bind(ctx)
}

// ridTagger is an interceptor that writes the mid and rid extensions into
// the packets of the SSRCs tags knows.
type ridTagger struct {
	interceptor.NoOp
	tags *streamTags
}

type ridTaggerFactory struct{ tags *streamTags }

func (f ridTaggerFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &ridTagger{tags: f.tags}, nil
}

func (t *ridTagger) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var midID, ridID uint8
	for _, e := range info.RTPHeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID) //nolint:gosec // extension ids are 1..14
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID) //nolint:gosec // extension ids are 1..14
		}
	}
	if midID == 0 || ridID == 0 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if v, ok := t.tags.m.Load(h.SSRC); ok {
			tag := v.(streamTag) //nolint:forcetypeassert // only streamTags are stored
			_ = h.SetExtension(midID, tag.mid)
			_ = h.SetExtension(ridID, tag.rid)
		}
		return w.Write(h, payload, a)
	})
}
