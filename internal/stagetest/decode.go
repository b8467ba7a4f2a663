package stagetest

import (
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/trackdecode"
)

// DecodeTrack decodes tr until it ends, giving a video track's frames to
// onVideo and an audio track's to onAudio; a track whose callback is nil is
// read and dropped. After each video packet that leaves the decoder
// waiting for a keyframe, it calls needKeyframe, if not nil, to ask the
// publisher for one.
func DecodeTrack(t testing.TB, tr *webrtc.TrackRemote, onVideo, onAudio func(*astiav.Frame, uint32), needKeyframe func()) {
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	onFrame := onAudio
	if video {
		onFrame = onVideo
	}
	if onFrame == nil {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	}
	type decoder interface {
		Push(*rtp.Packet, func(*astiav.Frame, uint32)) error
		Close()
	}
	var (
		dec decoder
		v   *trackdecode.Video
		err error
	)
	if video {
		v, err = trackdecode.NewVideo(tr.Codec().MimeType)
		dec = v
	} else {
		dec, err = trackdecode.NewAudio(tr.Codec().MimeType)
	}
	if err != nil {
		t.Error(err)
		return
	}
	defer dec.Close()
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		_ = dec.Push(pkt, onFrame)
		if v != nil && needKeyframe != nil && v.NeedsKeyframe() {
			needKeyframe()
		}
	}
}
