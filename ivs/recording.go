package ivs

import "time"

// Participant recording states, as GetParticipant reports them.
const (
	RecordingStarting = "STARTING"
	RecordingActive   = "ACTIVE"
	RecordingStopping = "STOPPING"
	RecordingStopped  = "STOPPED"
	RecordingFailed   = "FAILED"
	RecordingDisabled = "DISABLED"
)

// ParticipantRecording is one individual participant recording: what the
// stage's autoParticipantRecordingConfiguration started when the
// participant published. It is kept beside the participant record (the
// stage owns that one) and merged into it by GetParticipant.
type ParticipantRecording struct {
	StageARN      string `json:"stageArn"`
	SessionID     string `json:"sessionId"`
	ParticipantID string `json:"participantId"`
	BucketName    string `json:"bucketName"`
	// Prefix is <stage id>/<session id>/<participant id>/<start, epoch ms>.
	Prefix string `json:"prefix"`
	State  string `json:"state"`
	// Config is the stage's configuration when the recording started: a
	// later UpdateStage does not change a running recording.
	Config    AutoParticipantRecordingConfiguration `json:"config"`
	StartTime time.Time                             `json:"startTime"`
	EndTime   *time.Time                            `json:"endTime,omitempty"`
	// Publishes counts the participant's PUBLISH_STARTED events in this
	// recording; a change tells the worker, waiting out the reconnect
	// window, that the participant is back.
	Publishes int    `json:"publishes"`
	Worker    string `json:"worker,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Ref, when set, makes this record stand for the recording stored
	// under that key: the participant's latest recording on a stage, or a
	// recording continued in a later stage session (a participant alone on
	// a stage who reconnects rejoins in a new session).
	Ref string `json:"ref,omitempty"`
}

// Live reports whether the recording still takes the participant's media:
// a new PUBLISH_STARTED continues it rather than starting another.
func (r ParticipantRecording) Live() bool {
	return r.State == RecordingStarting || r.State == RecordingActive
}
