package jobs

import "strconv"

// ParticipantRecording names the recording a KindParticipantRecording job
// runs: the store key <stage id>.<session id>.<participant id> of its
// record, and its start, which tells it from earlier recordings of the same
// participant.
type ParticipantRecording struct {
	StageID       string `json:"stageId"`
	SessionID     string `json:"sessionId"`
	ParticipantID string `json:"participantId"`
	StartMS       int64  `json:"startMs"`
}

// Key is the recording's key in the store's Recordings table.
func (p ParticipantRecording) Key() string {
	return p.StageID + "." + p.SessionID + "." + p.ParticipantID
}

// ParticipantRecordingJob is the job of one participant recording; its Name
// is unique to the recording.
func ParticipantRecordingJob(stageARN string, p ParticipantRecording) Job {
	name := stageARN + "/participant-recording/" + p.SessionID + "/" + p.ParticipantID + "/" +
		strconv.FormatInt(p.StartMS, 10)
	return Job{Name: name, StageARN: stageARN, Kind: KindParticipantRecording, Participant: &p}
}
