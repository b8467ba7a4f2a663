package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stagesignal"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
)

type tokenConfigurationInput struct {
	Duration     *int              `json:"duration"`
	UserID       *string           `json:"userId"`
	Attributes   map[string]string `json:"attributes"`
	Capabilities []string          `json:"capabilities"`
}

type recordingInput struct {
	StorageConfigurationARN *string  `json:"storageConfigurationArn"`
	MediaTypes              []string `json:"mediaTypes"`
	ThumbnailConfiguration  *struct {
		TargetIntervalSeconds *int     `json:"targetIntervalSeconds"`
		Storage               []string `json:"storage"`
		RecordingMode         *string  `json:"recordingMode"`
	} `json:"thumbnailConfiguration"`
	RecordingReconnectWindowSeconds *int `json:"recordingReconnectWindowSeconds"`
	HLSConfiguration                *struct {
		TargetSegmentDurationSeconds *int `json:"targetSegmentDurationSeconds"`
	} `json:"hlsConfiguration"`
	RecordParticipantReplicas *bool `json:"recordParticipantReplicas"`
}

type createStageInput struct {
	Name                                  *string                   `json:"name"`
	ParticipantTokenConfigurations        []tokenConfigurationInput `json:"participantTokenConfigurations"`
	Tags                                  map[string]string         `json:"tags"`
	AutoParticipantRecordingConfiguration *recordingInput           `json:"autoParticipantRecordingConfiguration"`
}

type createStageOutput struct {
	Stage             ivs.Stage              `json:"stage"`
	ParticipantTokens []ivs.ParticipantToken `json:"participantTokens,omitempty"`
}

func (s *Server) createStage(ctx context.Context, in *createStageInput) (*createStageOutput, *Error) {
	var v violations
	v.name("name", in.Name)
	v.tags("tags", in.Tags)
	if n := len(in.ParticipantTokenConfigurations); n > 12 {
		v.add("participantTokenConfigurations", fmt.Sprintf("list of %d", n),
			"Member must have length less than or equal to 12")
	}
	for i := range in.ParticipantTokenConfigurations {
		validateTokenConfiguration(&v, fmt.Sprintf("participantTokenConfigurations.%d.member", i+1),
			&in.ParticipantTokenConfigurations[i])
	}
	rec := ivs.DefaultAutoParticipantRecording()
	if in.AutoParticipantRecordingConfiguration != nil {
		rec = validateRecording(&v, in.AutoParticipantRecordingConfiguration, rec)
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	if e := s.checkStorage(ctx, rec.StorageConfigurationARN); e != nil {
		return nil, e
	}
	id := ivs.NewID()
	st := ivs.Stage{ARN: s.cfg.Namespace.ARN(ivs.TypeStage, id), Name: strOr(in.Name, ""),
		AutoParticipantRecordingConfiguration: rec, Endpoints: s.cfg.Endpoints, Tags: tagsOrEmpty(in.Tags)}
	out := &createStageOutput{Stage: st}
	for i := range in.ParticipantTokenConfigurations {
		t, e := s.issueToken(st, &in.ParticipantTokenConfigurations[i])
		if e != nil {
			return nil, e
		}
		out.ParticipantTokens = append(out.ParticipantTokens, t)
	}
	if err := s.store.Stages.Create(ctx, id, st); err != nil {
		return nil, s.storeError(err, st.ARN)
	}
	return out, nil
}

// checkStorage checks that a recording's storage configuration exists.
func (s *Server) checkStorage(ctx context.Context, arn string) *Error {
	if arn == "" {
		return nil
	}
	_, _, e := fetch(ctx, s, s.store.StorageConfigurations,
		"autoParticipantRecordingConfiguration.storageConfigurationArn", arn, ivs.TypeStorageConfiguration)
	return e
}

func validateRecording(v *violations, in *recordingInput,
	cur ivs.AutoParticipantRecordingConfiguration) ivs.AutoParticipantRecordingConfiguration {
	const p = "autoParticipantRecordingConfiguration"
	if in.StorageConfigurationARN != nil {
		if *in.StorageConfigurationARN == "" {
			// IVS: an empty ARN turns recording off and resets every setting.
			return ivs.DefaultAutoParticipantRecording()
		}
		v.arn(p+".storageConfigurationArn", *in.StorageConfigurationARN, ivs.TypeStorageConfiguration)
		cur.StorageConfigurationARN = *in.StorageConfigurationARN
	}
	if in.MediaTypes != nil {
		if len(in.MediaTypes) > 1 {
			v.add(p+".mediaTypes", in.MediaTypes, "Member must have length less than or equal to 1")
		}
		for _, m := range in.MediaTypes {
			v.enum(p+".mediaTypes.member", m, "AUDIO_VIDEO", "AUDIO_ONLY", "NONE")
		}
		cur.MediaTypes = in.MediaTypes
	}
	if t := in.ThumbnailConfiguration; t != nil {
		v.intRange(p+".thumbnailConfiguration.targetIntervalSeconds", t.TargetIntervalSeconds, 1, 86400)
		cur.ThumbnailConfiguration.TargetIntervalSeconds = intOr(t.TargetIntervalSeconds,
			cur.ThumbnailConfiguration.TargetIntervalSeconds)
		if t.Storage != nil {
			validateThumbnailStorage(v, p+".thumbnailConfiguration.storage", t.Storage)
			cur.ThumbnailConfiguration.Storage = t.Storage
		}
		if t.RecordingMode != nil {
			v.enum(p+".thumbnailConfiguration.recordingMode", *t.RecordingMode, "INTERVAL", "DISABLED")
			cur.ThumbnailConfiguration.RecordingMode = *t.RecordingMode
		}
	}
	if in.RecordingReconnectWindowSeconds != nil {
		v.intRange(p+".recordingReconnectWindowSeconds", in.RecordingReconnectWindowSeconds, 0, 300)
		cur.RecordingReconnectWindowSeconds = *in.RecordingReconnectWindowSeconds
	}
	if h := in.HLSConfiguration; h != nil && h.TargetSegmentDurationSeconds != nil {
		v.intRange(p+".hlsConfiguration.targetSegmentDurationSeconds", h.TargetSegmentDurationSeconds, 2, 10)
		cur.HLSConfiguration.TargetSegmentDurationSeconds = *h.TargetSegmentDurationSeconds
	}
	if in.RecordParticipantReplicas != nil {
		cur.RecordParticipantReplicas = *in.RecordParticipantReplicas
	}
	return cur
}

func validateThumbnailStorage(v *violations, field string, storage []string) {
	if len(storage) > 2 {
		v.add(field, storage, "Member must have length less than or equal to 2")
	}
	for _, st := range storage {
		v.enum(field+".member", st, "SEQUENTIAL", "LATEST")
	}
}

func (s *Server) getStage(ctx context.Context, in *arnInput) (*stageOutput, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	st, _, e := fetch(ctx, s, s.store.Stages, "arn", arn, ivs.TypeStage)
	if e != nil {
		return nil, e
	}
	return &stageOutput{st}, nil
}

type stageOutput struct {
	Stage ivs.Stage `json:"stage"`
}

type listStagesOutput struct {
	Stages    []ivs.StageSummary `json:"stages"`
	NextToken string             `json:"nextToken,omitempty"`
}

func (s *Server) listStages(ctx context.Context, in *listInput) (*listStagesOutput, *Error) {
	var v violations
	p := v.page(in.NextToken, in.MaxResults, 50)
	if e := v.err(); e != nil {
		return nil, e
	}
	items, next, e := listPage(ctx, s, s.store.Stages, "", p, nil, ivs.Stage.Summary)
	if e != nil {
		return nil, e
	}
	return &listStagesOutput{items, next}, nil
}

type updateStageInput struct {
	ARN                                   *string         `json:"arn"`
	Name                                  *string         `json:"name"`
	AutoParticipantRecordingConfiguration *recordingInput `json:"autoParticipantRecordingConfiguration"`
}

func (s *Server) updateStage(ctx context.Context, in *updateStageInput) (*stageOutput, *Error) {
	var v violations
	v.required("arn", in.ARN != nil)
	v.name("name", in.Name)
	if e := v.err(); e != nil {
		return nil, e
	}
	cur, a, e := fetch(ctx, s, s.store.Stages, "arn", *in.ARN, ivs.TypeStage)
	if e != nil {
		return nil, e
	}
	rec := cur.AutoParticipantRecordingConfiguration
	if in.AutoParticipantRecordingConfiguration != nil {
		rec = validateRecording(&v, in.AutoParticipantRecordingConfiguration, rec)
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	if e := s.checkStorage(ctx, rec.StorageConfigurationARN); e != nil {
		return nil, e
	}
	st, err := s.store.Stages.Update(ctx, a.ID, func(st *ivs.Stage) error {
		if in.AutoParticipantRecordingConfiguration != nil {
			if st.ActiveSessionID != "" && st.AutoParticipantRecordingConfiguration.StorageConfigurationARN != "" {
				return conflict("stage %s is recording participants in session %s: its recording configuration cannot change "+
					"until the session ends", st.ARN, st.ActiveSessionID)
			}
			st.AutoParticipantRecordingConfiguration = rec
		}
		if in.Name != nil {
			st.Name = *in.Name
		}
		return nil
	})
	if e := (*Error)(nil); errors.As(err, &e) {
		return nil, e
	}
	if err != nil {
		return nil, s.storeError(err, *in.ARN)
	}
	return &stageOutput{st}, nil
}

func (s *Server) deleteStage(ctx context.Context, in *arnInput) (*empty, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	_, a, e := fetch(ctx, s, s.store.Stages, "arn", arn, ivs.TypeStage)
	if e != nil {
		return nil, e
	}
	// As IVS does: the stage's compositions stop, its participants are
	// disconnected and ingest configurations publishing to it detach.
	comps, _, err := s.store.Compositions.Page(ctx, "", "", -1, func(c ivs.Composition) bool {
		return c.StageARN == arn && !c.Ended()
	})
	if err != nil {
		return nil, s.storeError(err, "compositions")
	}
	for _, c := range comps {
		if e := s.stopComposition(ctx, c.Key); e != nil {
			return nil, e
		}
	}
	ingests, _, err := s.store.IngestConfigurations.Page(ctx, "", "", -1,
		func(c ivs.IngestConfiguration) bool { return c.StageARN == arn })
	if err != nil {
		return nil, s.storeError(err, "ingest configurations")
	}
	for _, it := range ingests {
		if _, err := s.store.IngestConfigurations.Update(ctx, it.Key, func(c *ivs.IngestConfiguration) error {
			c.StageARN = ""
			return nil
		}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, s.storeError(err, it.Value.ARN)
		}
	}
	s.signalDisconnect(a.ID, stagesignal.Everyone, "stage deleted")
	if err := s.store.Stages.Delete(ctx, a.ID); err != nil {
		return nil, s.storeError(err, arn)
	}
	return &empty{}, nil
}

type createParticipantTokenInput struct {
	StageARN *string `json:"stageArn"`
	tokenConfigurationInput
}

type participantTokenOutput struct {
	ParticipantToken ivs.ParticipantToken `json:"participantToken"`
}

func (s *Server) createParticipantToken(ctx context.Context, in *createParticipantTokenInput) (*participantTokenOutput,
	*Error) {
	var v violations
	v.required("stageArn", in.StageARN != nil)
	validateTokenConfiguration(&v, "", &in.tokenConfigurationInput)
	if e := v.err(); e != nil {
		return nil, e
	}
	st, _, e := fetch(ctx, s, s.store.Stages, "stageArn", *in.StageARN, ivs.TypeStage)
	if e != nil {
		return nil, e
	}
	t, e := s.issueToken(st, &in.tokenConfigurationInput)
	if e != nil {
		return nil, e
	}
	return &participantTokenOutput{t}, nil
}

func validateTokenConfiguration(v *violations, prefix string, in *tokenConfigurationInput) {
	if prefix != "" {
		prefix += "."
	}
	v.intRange(prefix+"duration", in.Duration, 1, 20160)
	if in.UserID != nil {
		v.length(prefix+"userId", *in.UserID, 0, 128)
	}
	v.attributes(prefix+"attributes", in.Attributes)
	if len(in.Capabilities) > 2 {
		v.add(prefix+"capabilities", in.Capabilities, "Member must have length less than or equal to 2")
	}
	for _, c := range in.Capabilities {
		v.enum(prefix+"capabilities.member", c, "PUBLISH", "SUBSCRIBE")
	}
}

// issueToken signs a participant token for a stage with the server's key.
func (s *Server) issueToken(st ivs.Stage, in *tokenConfigurationInput) (ivs.ParticipantToken, *Error) {
	caps := in.Capabilities
	if caps == nil {
		caps = []string{"PUBLISH", "SUBSCRIBE"}
	}
	duration := intOr(in.Duration, 720)
	now := s.now().Truncate(time.Second)
	a, _ := ivs.ParseARN(st.ARN)
	c := token.Claims{
		ParticipantID: ivs.NewID(), UserID: strOr(in.UserID, ""), StageARN: st.ARN, StageID: a.ID,
		EventsURL: st.Endpoints.Events, WhipURL: st.Endpoints.WHIP,
		Attributes: attrsOrEmpty(in.Attributes), IssuedAt: now, ExpiresAt: now.Add(time.Duration(duration) * time.Minute),
	}
	for _, cp := range caps {
		c.Publish = c.Publish || cp == "PUBLISH"
		c.Subscribe = c.Subscribe || cp == "SUBSCRIBE"
	}
	tok, err := s.signer.Sign(c)
	if err != nil {
		s.log.Error("sign participant token", "stage", st.ARN, "error", err)
		return ivs.ParticipantToken{}, internalError()
	}
	return ivs.ParticipantToken{ParticipantID: c.ParticipantID, Token: tok, UserID: c.UserID,
		Attributes: c.Attributes, Duration: duration, Capabilities: caps, ExpirationTime: c.ExpiresAt}, nil
}
