package stage

// Message is one JSON text frame of the events channel. A watcher first
// gets a snapshot of who is connected and what they publish, then every
// change in the order the stage saw it.
type Message struct {
	Type MessageType `json:"type"`
	// SessionID is the stage session a snapshot or session message is
	// about ("" in a snapshot of an idle stage).
	SessionID string `json:"sessionId,omitempty"`
	// Participant is who joined, left, published or unpublished.
	Participant *ParticipantInfo `json:"participant,omitempty"`
	// Participants are everyone connected, in a snapshot.
	Participants []ParticipantInfo `json:"participants,omitempty"`
	// Reason says why a participant left, when known.
	Reason string `json:"reason,omitempty"`
}

// MessageType names what a Message tells.
type MessageType string

// Message types.
const (
	MsgSnapshot          MessageType = "snapshot"
	MsgSessionStarted    MessageType = "session-started"
	MsgSessionEnded      MessageType = "session-ended"
	MsgParticipantJoined MessageType = "participant-joined"
	MsgParticipantLeft   MessageType = "participant-left"
	// MsgTracksPublished: the participant's tracks flow and can be
	// subscribed to (POST /whep/{participantId}). It comes again, with
	// every track, when a track starts late (more than 3 s after the
	// first): subscriptions made before lack it.
	MsgTracksPublished MessageType = "tracks-published"
	// MsgTracksUnpublished: the participant stopped publishing.
	MsgTracksUnpublished MessageType = "tracks-unpublished"
	// MsgReconnect: the node serving this stage is leaving: reconnect to
	// the stage's URLs with the same token now. Reason says why; the node
	// then closes the channel with status 1012 (Service Restart).
	MsgReconnect MessageType = "reconnect"
)

// ParticipantInfo is a participant as the events channel describes it.
type ParticipantInfo struct {
	ParticipantID string            `json:"participantId"`
	UserID        string            `json:"userId"`
	Attributes    map[string]string `json:"attributes"`
	// Tracks are what the participant publishes; empty when it does not.
	Tracks []TrackInfo `json:"tracks"`
}

// TrackInfo is one published track.
type TrackInfo struct {
	TrackID string `json:"trackId"`
	Kind    string `json:"kind"`  // "audio" or "video"
	Codec   string `json:"codec"` // MIME type: audio/opus, video/VP8, video/H264
	// Layers are a simulcast track's encodings, low to high; none for a
	// track of one encoding.
	Layers []LayerInfo `json:"layers,omitempty"`
}
