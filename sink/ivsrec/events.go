package ivsrec

import (
	"encoding/json"
	"fmt"
	"time"
)

// Recording status values of IVS's recording event objects.
const (
	StatusStarted           = "RECORDING_STARTED"
	StatusEnded             = "RECORDING_ENDED"
	StatusEndedWithFailure  = "RECORDING_ENDED_WITH_FAILURE"
	eventsVersion           = "v1"
	eventStartedFile        = "events/recording-started.json"
	eventEndedFile          = "events/recording-ended.json"
	eventFailedFile         = "events/recording-failed.json"
	hlsPath, masterPlaylist = "media/hls", "multivariant.m3u8"
)

// recordingEvent is the metadata object IVS writes under events/ of a
// composite recording (same schema for started, ended and failed).
type recordingEvent struct {
	Version       string `json:"version"`
	StageARN      string `json:"stage_arn"`
	StartedAt     string `json:"recording_started_at,omitempty"`
	EndedAt       string `json:"recording_ended_at,omitempty"`
	Status        string `json:"recording_status"`
	StatusMessage string `json:"recording_status_message,omitempty"`
	Media         struct {
		HLS struct {
			Path       string           `json:"path"`
			Playlist   string           `json:"playlist"`
			DurationMS *int64           `json:"duration_ms,omitempty"`
			Renditions []eventRendition `json:"renditions"`
		} `json:"hls"`
	} `json:"media"`
}

type eventRendition struct {
	Path     string `json:"path"`
	Playlist string `json:"playlist"`
	Width    int    `json:"resolution_width,omitempty"`
	Height   int    `json:"resolution_height,omitempty"`
}

func (r *Recorder) event(status, message string, ended bool) recordingEvent {
	var e recordingEvent
	e.Version, e.StageARN, e.Status, e.StatusMessage = eventsVersion, r.cfg.StageARN, status, message
	e.StartedAt = r.startedAt.UTC().Format(time.RFC3339)
	e.Media.HLS.Path, e.Media.HLS.Playlist = hlsPath, masterPlaylist
	vp := r.cfg.Video.Params
	e.Media.HLS.Renditions = []eventRendition{{Path: r.cfg.Rendition, Playlist: "playlist.m3u8", Width: vp.Width(), Height: vp.Height()}}
	if ended {
		e.EndedAt = time.Now().UTC().Format(time.RFC3339)
		ms := int64(r.duration * 1000)
		e.Media.HLS.DurationMS = &ms
	}
	return e
}

func (r *Recorder) writeEvent(file string, e recordingEvent) error {
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("hls: event: %w", err)
	}
	return r.publish(file, data)
}
