// Package stagesignal holds the messages the API sends stage servers over
// core NATS: their subjects and their JSON. The API publishes them and
// stage servers subscribe; neither imports the other.
package stagesignal

import "strings"

// Everyone is the participant of a Disconnect that drops every participant:
// the stage was deleted.
const Everyone = "*"

// Disconnect subjects are stagehand.stage.<stage id>.disconnect.
const (
	subjectPrefix    = "stagehand.stage."
	disconnectSuffix = ".disconnect"
)

// DisconnectSubject is the subject on which the API tells the servers of
// a stage to drop a participant. DisconnectSubject("*") is every stage's,
// the one stage servers subscribe to.
func DisconnectSubject(stageID string) string { return subjectPrefix + stageID + disconnectSuffix }

// Disconnect is the message sent on DisconnectSubject.
type Disconnect struct {
	ParticipantID string `json:"participantId"`
	Reason        string `json:"reason"`
}

// DisconnectStage returns the stage id a disconnect subject names.
func DisconnectStage(subject string) (string, bool) {
	id, ok := strings.CutPrefix(subject, subjectPrefix)
	id, ok2 := strings.CutSuffix(id, disconnectSuffix)
	if !ok || !ok2 || id == "" || strings.Contains(id, ".") {
		return "", false
	}
	return id, true
}
