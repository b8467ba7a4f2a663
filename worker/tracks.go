// The composition as a participant of its stage: who is on the stage, and
// each subscribed track decoded into the engine.

package worker

import (
	"log/slog"

	"github.com/asticode/go-astiav"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/engine"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/trackdecode"
)

func layoutParticipants(ps []stage.ParticipantInfo) []layout.Participant {
	out := make([]layout.Participant, 0, len(ps))
	for _, p := range ps {
		video := false
		for _, t := range p.Tracks {
			video = video || t.Kind == "video"
		}
		out = append(out, layout.Participant{ID: p.ParticipantID, Attributes: p.Attributes, VideoStopped: !video})
	}
	return out
}

// decodeTrack feeds one subscribed track to the engine until it ends;
// height hears each video picture's height.
func decodeTrack(in engine.Inputs, pid string, tr *webrtc.TrackRemote, sub *client.Subscription, log *slog.Logger,
	height func(int)) {
	if tr.Kind() == webrtc.RTPCodecTypeAudio {
		dec, err := trackdecode.NewAudio(tr.Codec().MimeType)
		if err != nil {
			log.Warn("audio track left out", "participant", pid, "error", err)
			return
		}
		defer dec.Close()
		dec.Run(tr, func(f *astiav.Frame, _ uint32) { _ = in.Audio(pid, f) })
		return
	}
	dec, err := trackdecode.NewVideo(tr.Codec().MimeType)
	if err != nil {
		log.Warn("video track left out", "participant", pid, "error", err)
		return
	}
	defer dec.Close()
	dec.Run(tr, func(f *astiav.Frame, _ uint32) {
		height(f.Height())
		_ = in.Video(pid, f)
	}, func() { _ = sub.RequestKeyframe(tr) })
}
