package jobs

import "strconv"

// KindParticipantRecording marks a job that records one participant of a
// stage on its own (the stage's autoParticipantRecordingConfiguration).
const KindParticipantRecording = "participant-recording"

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

// ParticipantRecordingJob is the job of one participant recording. Its
// CompositionARN is a name, not an ARN: it only has to be unique, as it
// keys the job's subject, duplicate detection and stop signal.
func ParticipantRecordingJob(stageARN string, p ParticipantRecording) Job {
	name := stageARN + "/participant-recording/" + p.SessionID + "/" + p.ParticipantID + "/" +
		strconv.FormatInt(p.StartMS, 10)
	return Job{CompositionARN: name, StageARN: stageARN, Kind: KindParticipantRecording, Participant: &p}
}
