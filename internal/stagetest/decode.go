package stagetest

import (
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/trackdecode"
)

// DecodeTrack decodes tr until it ends, giving a video track's frames to
// onVideo and an audio track's to onAudio; a track whose callback is nil is
// read and dropped. After each video packet that leaves the decoder
// waiting for a keyframe, it calls needKeyframe, if not nil, to ask the
// publisher for one.
func DecodeTrack(t testing.TB, tr *webrtc.TrackRemote, onVideo, onAudio func(*astiav.Frame, uint32),
	needKeyframe func()) {
	t.Helper()
	switch video := tr.Kind() == webrtc.RTPCodecTypeVideo; {
	case video && onVideo != nil:
		v, err := trackdecode.NewVideo(tr.Codec().MimeType)
		if err != nil {
			t.Error(err)
			return
		}
		defer v.Close()
		if needKeyframe == nil {
			needKeyframe = func() {}
		}
		v.Run(tr, onVideo, needKeyframe)
	case !video && onAudio != nil:
		a, err := trackdecode.NewAudio(tr.Codec().MimeType)
		if err != nil {
			t.Error(err)
			return
		}
		defer a.Close()
		a.Run(tr, onAudio)
	default:
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
		}
	}
}
