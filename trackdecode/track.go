package trackdecode

import (
	"github.com/asticode/go-astiav"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// Track is where a decoder's packets come from: a subscribed
// *webrtc.TrackRemote.
type Track interface {
	ReadRTP() (*rtp.Packet, interceptor.Attributes, error)
}

// Run decodes tr's packets until reading fails (the track ended). A packet
// that does not decode is skipped: the next may.
func (a *Audio) Run(tr Track, onFrame func(f *astiav.Frame, rtpTS uint32)) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		_ = a.Push(pkt, onFrame)
	}
}

// Run decodes tr's packets until reading fails (the track ended), calling
// requestKeyframe whenever the decoder waits for one (a PLI to the sender).
func (v *Video) Run(tr Track, onFrame func(f *astiav.Frame, rtpTS uint32), requestKeyframe func()) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		_ = v.Push(pkt, onFrame)
		if v.NeedsKeyframe() {
			requestKeyframe()
		}
	}
}
