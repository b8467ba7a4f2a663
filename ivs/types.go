package ivs

import "time"

// Tags are a resource's tags: at most 50, keys 1..128, values 0..256 chars.
type Tags map[string]string

// Stage is a stage as GetStage returns it.
type Stage struct {
	ARN             string `json:"arn"`
	Name            string `json:"name"`
	ActiveSessionID string `json:"activeSessionId,omitempty"`

	AutoParticipantRecordingConfiguration AutoParticipantRecordingConfiguration `json:"autoParticipantRecordingConfiguration"` //nolint:lll // IVS's member name

	Endpoints StageEndpoints `json:"endpoints"`
	Tags      Tags           `json:"tags"`
}

// Summary is the stage as ListStages returns it.
func (s Stage) Summary() StageSummary {
	return StageSummary{ARN: s.ARN, Name: s.Name, ActiveSessionID: s.ActiveSessionID, Tags: s.Tags}
}

// StageSummary is a ListStages item.
type StageSummary struct {
	ARN             string `json:"arn"`
	Name            string `json:"name"`
	ActiveSessionID string `json:"activeSessionId,omitempty"`
	Tags            Tags   `json:"tags"`
}

// StageEndpoints are where participants reach a stage.
type StageEndpoints struct {
	Events string `json:"events"`
	WHIP   string `json:"whip"`
	RTMP   string `json:"rtmp"`
	RTMPS  string `json:"rtmps"`
}

// AutoParticipantRecordingConfiguration turns on individual participant
// recording; an empty StorageConfigurationARN means off.
type AutoParticipantRecordingConfiguration struct {
	StorageConfigurationARN         string                               `json:"storageConfigurationArn"`
	MediaTypes                      []string                             `json:"mediaTypes"`
	ThumbnailConfiguration          ParticipantThumbnailConfiguration    `json:"thumbnailConfiguration"`
	RecordingReconnectWindowSeconds int                                  `json:"recordingReconnectWindowSeconds"`
	HLSConfiguration                ParticipantRecordingHLSConfiguration `json:"hlsConfiguration"`
	RecordParticipantReplicas       bool                                 `json:"recordParticipantReplicas"`
}

// DefaultAutoParticipantRecording is the configuration every stage echoes
// when recording was never configured.
func DefaultAutoParticipantRecording() AutoParticipantRecordingConfiguration {
	return AutoParticipantRecordingConfiguration{
		MediaTypes: []string{"AUDIO_VIDEO"},
		ThumbnailConfiguration: ParticipantThumbnailConfiguration{
			TargetIntervalSeconds: 60, Storage: []string{"SEQUENTIAL"}, RecordingMode: "DISABLED",
		},
		HLSConfiguration:          ParticipantRecordingHLSConfiguration{TargetSegmentDurationSeconds: 6},
		RecordParticipantReplicas: true,
	}
}

// ParticipantThumbnailConfiguration is a participant recording's thumbnails.
type ParticipantThumbnailConfiguration struct {
	TargetIntervalSeconds int      `json:"targetIntervalSeconds"`
	Storage               []string `json:"storage"`
	RecordingMode         string   `json:"recordingMode"`
}

// ParticipantRecordingHLSConfiguration is a participant recording's HLS.
type ParticipantRecordingHLSConfiguration struct {
	TargetSegmentDurationSeconds int `json:"targetSegmentDurationSeconds"`
}

// StageSession is one span of a stage with participants in it.
type StageSession struct {
	SessionID string     `json:"sessionId"`
	StartTime time.Time  `json:"startTime"`
	EndTime   *time.Time `json:"endTime,omitempty"`
}

// Participant is one participant of one stage session.
type Participant struct {
	ParticipantID          string            `json:"participantId"`
	UserID                 string            `json:"userId"`
	State                  string            `json:"state"`
	FirstJoinTime          *time.Time        `json:"firstJoinTime,omitempty"`
	Attributes             map[string]string `json:"attributes"`
	Published              bool              `json:"published"`
	ISPName                string            `json:"ispName"`
	OSName                 string            `json:"osName"`
	OSVersion              string            `json:"osVersion"`
	BrowserName            string            `json:"browserName"`
	BrowserVersion         string            `json:"browserVersion"`
	SDKVersion             string            `json:"sdkVersion"`
	RecordingS3BucketName  string            `json:"recordingS3BucketName"`
	RecordingS3Prefix      string            `json:"recordingS3Prefix"`
	RecordingState         string            `json:"recordingState"`
	Protocol               string            `json:"protocol"`
	ReplicationType        string            `json:"replicationType"`
	IngestConfigurationARN string            `json:"ingestConfigurationArn,omitempty"`
}

// Summary is the participant as ListParticipants returns it.
func (p Participant) Summary() ParticipantSummary {
	return ParticipantSummary{
		ParticipantID: p.ParticipantID, UserID: p.UserID, State: p.State,
		FirstJoinTime: p.FirstJoinTime, Published: p.Published,
		RecordingState: p.RecordingState, ReplicationType: p.ReplicationType,
		IngestConfigurationARN: p.IngestConfigurationARN,
	}
}

// ParticipantSummary is a ListParticipants item.
type ParticipantSummary struct {
	ParticipantID          string     `json:"participantId"`
	UserID                 string     `json:"userId"`
	State                  string     `json:"state"`
	FirstJoinTime          *time.Time `json:"firstJoinTime,omitempty"`
	Published              bool       `json:"published"`
	RecordingState         string     `json:"recordingState"`
	ReplicationType        string     `json:"replicationType"`
	IngestConfigurationARN string     `json:"ingestConfigurationArn,omitempty"`
}

// Event is a participant event (JOINED, PUBLISH_STARTED, ...).
type Event struct {
	Name                string    `json:"name"`
	ParticipantID       string    `json:"participantId"`
	EventTime           time.Time `json:"eventTime"`
	RemoteParticipantID string    `json:"remoteParticipantId,omitempty"`
	ErrorCode           string    `json:"errorCode,omitempty"`
	Replica             bool      `json:"replica"`
}

// ParticipantToken is what CreateParticipantToken and CreateStage return.
type ParticipantToken struct {
	ParticipantID  string            `json:"participantId"`
	Token          string            `json:"token"`
	UserID         string            `json:"userId"`
	Attributes     map[string]string `json:"attributes"`
	Duration       int               `json:"duration"`
	Capabilities   []string          `json:"capabilities"`
	ExpirationTime time.Time         `json:"expirationTime"`
}

// EncoderConfiguration is a composition's video encoding settings.
type EncoderConfiguration struct {
	ARN   string `json:"arn"`
	Name  string `json:"name"`
	Video Video  `json:"video"`
	Tags  Tags   `json:"tags"`
}

// Summary is the configuration as ListEncoderConfigurations returns it.
func (e EncoderConfiguration) Summary() EncoderConfigurationSummary {
	return EncoderConfigurationSummary{ARN: e.ARN, Name: e.Name, Tags: e.Tags}
}

// EncoderConfigurationSummary is a ListEncoderConfigurations item.
type EncoderConfigurationSummary struct {
	ARN  string `json:"arn"`
	Name string `json:"name"`
	Tags Tags   `json:"tags"`
}

// Video is an encoder configuration's video settings.
type Video struct {
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Framerate float64 `json:"framerate"`
	Bitrate   int     `json:"bitrate"`
}

// StorageConfiguration is where recordings go.
type StorageConfiguration struct {
	ARN  string                 `json:"arn"`
	Name string                 `json:"name"`
	S3   S3StorageConfiguration `json:"s3"`
	Tags Tags                   `json:"tags"`
}

// S3StorageConfiguration names the bucket of a storage configuration.
type S3StorageConfiguration struct {
	BucketName string `json:"bucketName"`
}

// IngestConfiguration lets an RTMP(S) encoder publish into a stage.
type IngestConfiguration struct {
	ARN            string            `json:"arn"`
	Name           string            `json:"name"`
	IngestProtocol string            `json:"ingestProtocol"`
	StreamKey      string            `json:"streamKey"`
	StageARN       string            `json:"stageArn"`
	ParticipantID  string            `json:"participantId"`
	State          string            `json:"state"`
	UserID         string            `json:"userId"`
	Attributes     map[string]string `json:"attributes"`
	// InsecureIngest lets plain RTMP in. IVS does not echo it; Stagehand
	// stores it beside the configuration (see Wire).
	InsecureIngest bool `json:"insecureIngest,omitempty"`
	Tags           Tags `json:"tags"`
}

// Wire returns the configuration as IVS shows it.
func (c IngestConfiguration) Wire() IngestConfiguration {
	c.InsecureIngest = false
	return c
}

// Summary is the configuration as ListIngestConfigurations returns it.
func (c IngestConfiguration) Summary() IngestConfigurationSummary {
	return IngestConfigurationSummary{
		ARN: c.ARN, Name: c.Name, IngestProtocol: c.IngestProtocol, StageARN: c.StageARN,
		ParticipantID: c.ParticipantID, State: c.State, UserID: c.UserID,
	}
}

// IngestConfigurationSummary is a ListIngestConfigurations item.
type IngestConfigurationSummary struct {
	ARN            string `json:"arn"`
	Name           string `json:"name"`
	IngestProtocol string `json:"ingestProtocol"`
	StageARN       string `json:"stageArn"`
	ParticipantID  string `json:"participantId"`
	State          string `json:"state"`
	UserID         string `json:"userId"`
}

// PublicKey is a customer key that signs participant tokens.
type PublicKey struct {
	ARN               string `json:"arn"`
	Name              string `json:"name"`
	PublicKeyMaterial string `json:"publicKeyMaterial"`
	Fingerprint       string `json:"fingerprint"`
	Tags              Tags   `json:"tags"`
}

// Summary is the key as ListPublicKeys returns it.
func (k PublicKey) Summary() PublicKeySummary {
	return PublicKeySummary{ARN: k.ARN, Name: k.Name, Tags: k.Tags}
}

// PublicKeySummary is a ListPublicKeys item.
type PublicKeySummary struct {
	ARN  string `json:"arn"`
	Name string `json:"name"`
	Tags Tags   `json:"tags"`
}
