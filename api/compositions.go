package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/store"
)

type destinationInput struct {
	Name    *string `json:"name"`
	Channel *struct {
		ChannelARN              *string `json:"channelArn"`
		EncoderConfigurationARN *string `json:"encoderConfigurationArn"`
	} `json:"channel"`
	S3 *struct {
		StorageConfigurationARN  *string  `json:"storageConfigurationArn"`
		EncoderConfigurationARNs []string `json:"encoderConfigurationArns"`
		RecordingConfiguration   *struct {
			Format           *string `json:"format"`
			HLSConfiguration *struct {
				TargetSegmentDurationSeconds *int `json:"targetSegmentDurationSeconds"`
			} `json:"hlsConfiguration"`
		} `json:"recordingConfiguration"`
		ThumbnailConfigurations []struct {
			TargetIntervalSeconds *int     `json:"targetIntervalSeconds"`
			Storage               []string `json:"storage"`
		} `json:"thumbnailConfigurations"`
	} `json:"s3"`
}

type startCompositionInput struct {
	StageARN         *string            `json:"stageArn"`
	IdempotencyToken *string            `json:"idempotencyToken"`
	Layout           *json.RawMessage   `json:"layout"`
	Destinations     []destinationInput `json:"destinations"`
	Tags             map[string]string  `json:"tags"`
}

type compositionOutput struct {
	Composition ivs.Composition `json:"composition"`
}

// Composite recordings are cut into 2 s segments unless asked otherwise.
const defaultCompositeSegmentSeconds = 2

func (s *Server) startComposition(ctx context.Context, in *startCompositionInput) (*compositionOutput, *Error) {
	var v violations
	v.required("stageArn", in.StageARN != nil)
	v.tags("tags", in.Tags)
	if t := in.IdempotencyToken; t != nil {
		v.length("idempotencyToken", *t, 1, 64)
		if !tokenIDPattern.MatchString(*t) {
			v.add("idempotencyToken", *t, "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*")
		}
	}
	lay := decodeLayout(&v, in.Layout)
	dests := validateDestinations(&v, in.Destinations)
	if e := v.err(); e != nil {
		return nil, e
	}
	if in.IdempotencyToken != nil {
		if c, found, e := s.compositionForToken(ctx, *in.IdempotencyToken); e != nil || found {
			return c, e
		}
	}
	stage, stageARN, e := fetch(ctx, s, s.store.Stages, "stageArn", *in.StageARN, ivs.TypeStage)
	if e != nil {
		return nil, e
	}
	if e := s.checkDestinationResources(ctx, dests); e != nil {
		return nil, e
	}
	id := ivs.NewID()
	now := s.now()
	c := ivs.Composition{ARN: s.cfg.Namespace.ARN(ivs.TypeComposition, id), StageARN: stage.ARN,
		State: ivs.CompositionStarting, Layout: ivs.LayoutFrom(lay), Tags: tagsOrEmpty(in.Tags),
		StartTime: &now, Run: &ivs.CompositionRun{}}
	for _, d := range dests {
		d.ID = ivs.NewID()
		d.State = ivs.DestinationStarting
		if d.Configuration.S3 != nil {
			prefix := stageARN.ID + "/" + id + "/" + d.ID + "/composite"
			d.Detail = &ivs.DestinationDetail{S3: &ivs.S3Detail{RecordingPrefix: prefix}}
		}
		c.Destinations = append(c.Destinations, d)
	}
	if in.IdempotencyToken != nil {
		c.Run.IdempotencyToken = *in.IdempotencyToken
		if err := s.store.Idempotency.Create(ctx, *in.IdempotencyToken, c.ARN); errors.Is(err, store.ErrExists) {
			// A concurrent retry with the same token won the race.
			c, _, e := s.compositionForToken(ctx, *in.IdempotencyToken)
			return c, e
		} else if err != nil {
			return nil, s.storeError(err, "idempotency token")
		}
	}
	if err := s.store.Compositions.Create(ctx, id, c); err != nil {
		s.forgetToken(ctx, in.IdempotencyToken)
		return nil, s.storeError(err, c.ARN)
	}
	if err := s.jobs.Submit(ctx, jobs.Job{Name: c.ARN, StageARN: c.StageARN, SubmittedAt: now}); err != nil {
		// Nothing may remain of a request that failed.
		s.log.Error("submit composition job", "composition", c.ARN, "error", err)
		_ = s.store.Compositions.Delete(ctx, id)
		s.forgetToken(ctx, in.IdempotencyToken)
		return nil, internalError()
	}
	s.log.Info("composition started", "composition", c.ARN, "stage", c.StageARN, "destinations", len(c.Destinations))
	return &compositionOutput{c.Wire()}, nil
}

func (s *Server) forgetToken(ctx context.Context, tok *string) {
	if tok != nil {
		_ = s.store.Idempotency.Delete(ctx, *tok)
	}
}

// compositionForToken returns the composition an idempotency token created.
func (s *Server) compositionForToken(ctx context.Context, tok string) (*compositionOutput, bool, *Error) {
	arn, err := s.store.Idempotency.Get(ctx, tok)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.storeError(err, "idempotency token")
	}
	a, _ := ivs.ParseARN(arn)
	c, err := s.store.Compositions.Get(ctx, a.ID)
	if err != nil {
		return nil, false, s.storeError(err, arn)
	}
	return &compositionOutput{c.Wire()}, true, nil
}

// decodeLayout reads the layout with the layout engine's own types, so the
// API refuses exactly what the compositor could not render.
func decodeLayout(v *violations, raw *json.RawMessage) layout.Config {
	var c layout.Config
	if raw == nil || string(*raw) == "null" {
		return c
	}
	if err := json.Unmarshal(*raw, &c); err != nil {
		v.addf("Value at 'layout' failed to satisfy constraint: %v", err)
		return c
	}
	for _, err := range flatten(c.Validate()) {
		var le *layout.ValidationError
		if errors.As(err, &le) {
			v.addf("Value at '%s' failed to satisfy constraint: %s", le.Field, le.Reason)
		} else {
			v.addf("Value at 'layout' failed to satisfy constraint: %v", err)
		}
	}
	return c
}

func validateDestinations(v *violations, in []destinationInput) []ivs.Destination {
	if !v.required("destinations", in != nil) {
		return nil
	}
	if len(in) < 1 || len(in) > 2 {
		v.add("destinations", fmt.Sprintf("list of %d", len(in)), "Member must have length between 1 and 2")
	}
	var out []ivs.Destination
	channels, s3s := 0, 0
	for i, d := range in {
		field := fmt.Sprintf("destinations.%d.member", i+1)
		v.name(field+".name", d.Name)
		cfg := ivs.DestinationConfiguration{Name: strOr(d.Name, "")}
		switch {
		case (d.Channel == nil) == (d.S3 == nil):
			v.addf("Value at '%s' failed to satisfy constraint: exactly one of channel or s3 must be given", field)
		case d.Channel != nil:
			channels++
			cfg.Channel = &ivs.ChannelDestinationConfiguration{}
			if v.required(field+".channel.channelArn", d.Channel.ChannelARN != nil) {
				v.arn(field+".channel.channelArn", *d.Channel.ChannelARN, ivs.TypeChannel)
				cfg.Channel.ChannelARN = *d.Channel.ChannelARN
			}
			if d.Channel.EncoderConfigurationARN != nil {
				v.arn(field+".channel.encoderConfigurationArn", *d.Channel.EncoderConfigurationARN, ivs.TypeEncoderConfiguration)
				cfg.Channel.EncoderConfigurationARN = *d.Channel.EncoderConfigurationARN
			}
		default:
			s3s++
			cfg.S3 = validateS3Destination(v, field+".s3", &d)
		}
		out = append(out, ivs.Destination{Configuration: cfg})
	}
	if channels > 1 || s3s > 1 {
		v.addf("Value at 'destinations' failed to satisfy constraint: at most one channel and one s3 destination")
	}
	return out
}

func validateS3Destination(v *violations, field string, d *destinationInput) *ivs.S3DestinationConfiguration {
	in := d.S3
	out := &ivs.S3DestinationConfiguration{RecordingConfiguration: ivs.RecordingConfiguration{
		Format: "HLS",
		HLSConfiguration: ivs.CompositionHLSConfiguration{
			TargetSegmentDurationSeconds: defaultCompositeSegmentSeconds}}}
	if v.required(field+".storageConfigurationArn", in.StorageConfigurationARN != nil) {
		v.arn(field+".storageConfigurationArn", *in.StorageConfigurationARN, ivs.TypeStorageConfiguration)
		out.StorageConfigurationARN = *in.StorageConfigurationARN
	}
	if v.required(field+".encoderConfigurationArns", in.EncoderConfigurationARNs != nil) {
		if len(in.EncoderConfigurationARNs) != 1 {
			v.add(field+".encoderConfigurationArns", fmt.Sprintf("list of %d", len(in.EncoderConfigurationARNs)),
				"Member must have length 1")
		}
		for _, a := range in.EncoderConfigurationARNs {
			v.arn(field+".encoderConfigurationArns.member", a, ivs.TypeEncoderConfiguration)
		}
		out.EncoderConfigurationARNs = in.EncoderConfigurationARNs
	}
	if rc := in.RecordingConfiguration; rc != nil {
		if rc.Format != nil {
			v.enum(field+".recordingConfiguration.format", *rc.Format, "HLS")
		}
		if h := rc.HLSConfiguration; h != nil && h.TargetSegmentDurationSeconds != nil {
			v.intRange(field+".recordingConfiguration.hlsConfiguration.targetSegmentDurationSeconds",
				h.TargetSegmentDurationSeconds, 2, 10)
			out.RecordingConfiguration.HLSConfiguration.TargetSegmentDurationSeconds = *h.TargetSegmentDurationSeconds
		}
	}
	if len(in.ThumbnailConfigurations) > 1 {
		v.add(field+".thumbnailConfigurations", fmt.Sprintf("list of %d", len(in.ThumbnailConfigurations)),
			"Member must have length less than or equal to 1")
	}
	for i, t := range in.ThumbnailConfigurations {
		tf := fmt.Sprintf("%s.thumbnailConfigurations.%d.member", field, i+1)
		v.intRange(tf+".targetIntervalSeconds", t.TargetIntervalSeconds, 1, 86400)
		th := ivs.CompositionThumbnailConfiguration{TargetIntervalSeconds: intOr(t.TargetIntervalSeconds, 60),
			Storage: []string{"SEQUENTIAL"}}
		if t.Storage != nil {
			validateThumbnailStorage(v, tf+".storage", t.Storage)
			th.Storage = t.Storage
		}
		out.ThumbnailConfigurations = append(out.ThumbnailConfigurations, th)
	}
	return out
}

// checkDestinationResources checks that every referenced resource exists.
func (s *Server) checkDestinationResources(ctx context.Context, dests []ivs.Destination) *Error {
	for _, d := range dests {
		if ch := d.Configuration.Channel; ch != nil {
			if _, ok := s.cfg.Channels[ch.ChannelARN]; !ok {
				return notFound("channel %s not found: this server sends to the channels it is configured with (stagehand serve "+
					"--channel ARN=URL)", ch.ChannelARN)
			}
			if ch.EncoderConfigurationARN != "" {
				if _, _, e := fetch(ctx, s, s.store.EncoderConfigurations, "encoderConfigurationArn", ch.EncoderConfigurationARN,
					ivs.TypeEncoderConfiguration); e != nil {
					return e
				}
			}
		}
		if s3 := d.Configuration.S3; s3 != nil {
			if _, _, e := fetch(ctx, s, s.store.StorageConfigurations, "storageConfigurationArn", s3.StorageConfigurationARN,
				ivs.TypeStorageConfiguration); e != nil {
				return e
			}
			for _, a := range s3.EncoderConfigurationARNs {
				if _, _, e := fetch(ctx, s, s.store.EncoderConfigurations, "encoderConfigurationArns", a,
					ivs.TypeEncoderConfiguration); e != nil {
					return e
				}
			}
		}
	}
	return nil
}

func (s *Server) getComposition(ctx context.Context, in *arnInput) (*compositionOutput, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	c, _, e := fetch(ctx, s, s.store.Compositions, "arn", arn, ivs.TypeComposition)
	if e != nil {
		return nil, e
	}
	return &compositionOutput{c.Wire()}, nil
}

type listCompositionsInput struct {
	FilterByStageARN                *string `json:"filterByStageArn"`
	FilterByEncoderConfigurationARN *string `json:"filterByEncoderConfigurationArn"`
	listInput
}

type listCompositionsOutput struct {
	Compositions []ivs.CompositionSummary `json:"compositions"`
	NextToken    string                   `json:"nextToken,omitempty"`
}

func (s *Server) listCompositions(ctx context.Context, in *listCompositionsInput) (*listCompositionsOutput, *Error) {
	var v violations
	p := v.page(in.NextToken, in.MaxResults, 100)
	if in.FilterByStageARN != nil {
		v.arn("filterByStageArn", *in.FilterByStageARN, ivs.TypeStage)
	}
	if in.FilterByEncoderConfigurationARN != nil {
		v.arn("filterByEncoderConfigurationArn", *in.FilterByEncoderConfigurationARN, ivs.TypeEncoderConfiguration)
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	keep := func(c ivs.Composition) bool {
		return (in.FilterByStageARN == nil || c.StageARN == *in.FilterByStageARN) &&
			(in.FilterByEncoderConfigurationARN == nil || usesEncoder(c, *in.FilterByEncoderConfigurationARN))
	}
	items, next, e := listPage(ctx, s, s.store.Compositions, "", p, keep, ivs.Composition.Summary)
	if e != nil {
		return nil, e
	}
	return &listCompositionsOutput{items, next}, nil
}

func (s *Server) stopCompositionOp(ctx context.Context, in *arnInput) (*empty, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	_, a, e := fetch(ctx, s, s.store.Compositions, "arn", arn, ivs.TypeComposition)
	if e != nil {
		return nil, e
	}
	if e := s.stopComposition(ctx, a.ID); e != nil {
		return nil, e
	}
	return &empty{}, nil
}

// stopComposition asks a composition to stop. One that no worker has
// claimed yet stops at once; a running one goes to STOPPING and its worker
// is signalled, and sets STOPPED when its outputs are closed.
func (s *Server) stopComposition(ctx context.Context, id string) *Error {
	now := s.now()
	c, err := s.store.Compositions.Update(ctx, id, func(c *ivs.Composition) error {
		if c.Ended() {
			return nil
		}
		if c.Run == nil {
			c.Run = &ivs.CompositionRun{}
		}
		c.Run.StopRequested = true
		if c.Run.Worker != "" {
			c.State = ivs.CompositionStopping
			return nil
		}
		c.State = ivs.CompositionStopped
		c.EndTime = &now
		for i := range c.Destinations {
			c.Destinations[i].State = ivs.DestinationStopped
			c.Destinations[i].EndTime = &now
		}
		return nil
	})
	if err != nil {
		return s.storeError(err, "composition "+id)
	}
	if err := s.jobs.SignalStop(ctx, c.ARN); err != nil {
		s.log.Error("signal composition stop", "composition", c.ARN, "error", err)
		return internalError()
	}
	s.log.Info("composition stop requested", "composition", c.ARN, "state", c.State)
	return nil
}

// flatten lists the errors an errors.Join holds.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
