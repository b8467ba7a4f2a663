package recording

import (
	"encoding/json"
	"time"
)

// Recording status values of IVS's recording event objects.
const (
	statusStarted          = "RECORDING_STARTED"
	statusEnded            = "RECORDING_ENDED"
	statusEndedWithFailure = "RECORDING_ENDED_WITH_FAILURE"
)

// event is the metadata object IVS writes under events/ of an individual
// participant recording: the composite schema plus session_id and
// participant_id; the rendition is "high", without resolution, and
// thumbnail blocks list renditions rather than resolutions.
type event struct {
	Version       string `json:"version"`
	StageARN      string `json:"stage_arn"`
	SessionID     string `json:"session_id"`
	ParticipantID string `json:"participant_id"`
	StartedAt     string `json:"recording_started_at,omitempty"`
	EndedAt       string `json:"recording_ended_at,omitempty"`
	Status        string `json:"recording_status"`
	StatusMessage string `json:"recording_status_message,omitempty"`
	Media         struct {
		HLS *struct {
			Path       string      `json:"path"`
			Playlist   string      `json:"playlist"`
			DurationMS *int64      `json:"duration_ms,omitempty"`
			Renditions []eventPath `json:"renditions"`
		} `json:"hls,omitempty"`
		Thumbnails      *eventThumbnails `json:"thumbnails,omitempty"`
		LatestThumbnail *eventThumbnails `json:"latest_thumbnail,omitempty"`
	} `json:"media"`
}

type eventPath struct {
	Path     string `json:"path"`
	Playlist string `json:"playlist,omitempty"`
}

type eventThumbnails struct {
	Path       string      `json:"path"`
	Renditions []eventPath `json:"renditions"`
}

// eventFor builds the event object of a recording in the given status;
// ended carries its end and duration.
func (w *Writer) eventFor(status, message string, ended bool) ([]byte, error) {
	var e event
	c := w.cfg
	e.Version, e.StageARN, e.SessionID, e.ParticipantID = "v1", c.StageARN, c.SessionID, c.ParticipantID
	e.Status, e.StatusMessage = status, message
	e.StartedAt = c.Start.UTC().Format(time.RFC3339)
	if c.HLS {
		e.Media.HLS = &struct {
			Path       string      `json:"path"`
			Playlist   string      `json:"playlist"`
			DurationMS *int64      `json:"duration_ms,omitempty"`
			Renditions []eventPath `json:"renditions"`
		}{Path: "media/hls", Playlist: "multivariant.m3u8", Renditions: []eventPath{{Path: rendition, Playlist: "playlist.m3u8"}}}
	}
	if c.ThumbnailsSequential {
		e.Media.Thumbnails = &eventThumbnails{Path: "media/thumbnails", Renditions: []eventPath{{Path: rendition}}}
	}
	if c.ThumbnailsLatest {
		e.Media.LatestThumbnail = &eventThumbnails{Path: "media/latest_thumbnail", Renditions: []eventPath{{Path: rendition}}}
	}
	if ended {
		e.EndedAt = time.Now().UTC().Format(time.RFC3339)
		if e.Media.HLS != nil {
			ms := w.pl.duration().Milliseconds()
			e.Media.HLS.DurationMS = &ms
		}
	}
	return json.MarshalIndent(e, "", "  ")
}
