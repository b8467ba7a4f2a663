package ivsrec

import (
	"encoding/json"
	"fmt"
	"time"
)

// Recording status values of IVS's recording event objects.
const (
	StatusStarted          = "RECORDING_STARTED"
	StatusEnded            = "RECORDING_ENDED"
	StatusEndedWithFailure = "RECORDING_ENDED_WITH_FAILURE"
)

// event is the metadata object IVS writes under events/, one schema for
// started, ended and failed. An individual participant recording adds
// session_id and participant_id and may list thumbnails; its rendition has
// no resolution.
type event struct {
	Version       string     `json:"version"`
	StageARN      string     `json:"stage_arn"`
	SessionID     string     `json:"session_id,omitempty"`
	ParticipantID string     `json:"participant_id,omitempty"`
	StartedAt     string     `json:"recording_started_at,omitempty"`
	EndedAt       string     `json:"recording_ended_at,omitempty"`
	Status        string     `json:"recording_status"`
	StatusMessage string     `json:"recording_status_message,omitempty"`
	Media         eventMedia `json:"media"`
}

type eventMedia struct {
	HLS             *eventHLS        `json:"hls,omitempty"`
	Thumbnails      *eventThumbnails `json:"thumbnails,omitempty"`
	LatestThumbnail *eventThumbnails `json:"latest_thumbnail,omitempty"`
}

type eventHLS struct {
	Path       string           `json:"path"`
	Playlist   string           `json:"playlist"`
	DurationMS *int64           `json:"duration_ms,omitempty"`
	Renditions []eventRendition `json:"renditions"`
}

type eventRendition struct {
	Path     string `json:"path"`
	Playlist string `json:"playlist,omitempty"`
	Width    int    `json:"resolution_width,omitempty"`
	Height   int    `json:"resolution_height,omitempty"`
}

type eventThumbnails struct {
	Path       string           `json:"path"`
	Renditions []eventRendition `json:"renditions"`
}

// newEvent is the event object of a recording started at start, in
// status; the failure that ended it, if any, gives the status message.
func newEvent(stageARN string, start time.Time, status string, failure error) event {
	e := event{Version: "v1", StageARN: stageARN, StartedAt: start.UTC().Format(time.RFC3339), Status: status}
	if failure != nil {
		e.StatusMessage = failure.Error()
	}
	return e
}

// withHLS lists the HLS media of one rendition (its size, when known).
func (e *event) withHLS(rendition string, width, height int) {
	e.Media.HLS = &eventHLS{Path: HLSDir, Playlist: multivariantName,
		Renditions: []eventRendition{{Path: rendition, Playlist: playlistName, Width: width, Height: height}}}
}

// withThumbnails lists the thumbnails of one rendition.
func (e *event) withThumbnails(rendition string, sequential, latest bool) {
	if sequential {
		e.Media.Thumbnails = &eventThumbnails{Path: thumbnailsDir, Renditions: []eventRendition{{Path: rendition}}}
	}
	if latest {
		e.Media.LatestThumbnail = &eventThumbnails{Path: latestThumbnailDir, Renditions: []eventRendition{{Path: rendition}}}
	}
}

// ended stamps the end, and the recorded duration of the HLS media.
func (e *event) ended(duration time.Duration) {
	e.EndedAt = time.Now().UTC().Format(time.RFC3339)
	if e.Media.HLS != nil {
		ms := duration.Milliseconds()
		e.Media.HLS.DurationMS = &ms
	}
}

func (e event) marshal() ([]byte, error) {
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("ivsrec: event: %w", err)
	}
	return data, nil
}
