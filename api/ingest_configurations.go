package api

import (
	"context"
	"errors"
	"strings"

	"github.com/stagehand-rt/stagehand/ivs"
)

// Ingest configuration states.
const (
	ingestActive   = "ACTIVE"
	ingestInactive = "INACTIVE"
)

type createIngestConfigurationInput struct {
	Name           *string           `json:"name"`
	StageARN       *string           `json:"stageArn"`
	UserID         *string           `json:"userId"`
	Attributes     map[string]string `json:"attributes"`
	IngestProtocol *string           `json:"ingestProtocol"`
	InsecureIngest *bool             `json:"insecureIngest"`
	Tags           map[string]string `json:"tags"`
}

type ingestConfigurationOutput struct {
	IngestConfiguration ivs.IngestConfiguration `json:"ingestConfiguration"`
}

func (s *Server) createIngestConfiguration(ctx context.Context,
	in *createIngestConfigurationInput) (*ingestConfigurationOutput, *Error) {
	var v violations
	v.name("name", in.Name)
	v.tags("tags", in.Tags)
	v.attributes("attributes", in.Attributes)
	if in.UserID != nil {
		v.length("userId", *in.UserID, 0, 128)
	}
	insecure := in.InsecureIngest != nil && *in.InsecureIngest
	if v.required("ingestProtocol", in.IngestProtocol != nil) {
		// IVS's own CLI example sends "rtmps" and gets RTMPS back.
		*in.IngestProtocol = strings.ToUpper(*in.IngestProtocol)
		v.enum("ingestProtocol", *in.IngestProtocol, "RTMP", "RTMPS")
		if *in.IngestProtocol == "RTMP" && !insecure {
			v.addf("Value 'RTMP' at 'ingestProtocol' failed to satisfy constraint: RTMP requires insecureIngest to be true")
		}
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	stageARN, e := s.optionalStage(ctx, in.StageARN)
	if e != nil {
		return nil, e
	}
	id := ivs.NewID()
	ns := s.cfg.Namespace
	c := ivs.IngestConfiguration{
		ARN:            ns.ARN(ivs.TypeIngestConfiguration, id),
		Name:           strOr(in.Name, ""),
		IngestProtocol: *in.IngestProtocol,
		StreamKey:      "rt_" + ns.Account + "_" + ns.Region + "_" + id + "_" + ivs.RandomString(32),
		StageARN:       stageARN,
		ParticipantID:  ivs.NewID(),
		State:          ingestInactive,
		UserID:         strOr(in.UserID, ""),
		Attributes:     attrsOrEmpty(in.Attributes),
		InsecureIngest: insecure,
		Tags:           tagsOrEmpty(in.Tags),
	}
	if err := s.store.IngestConfigurations.Create(ctx, id, c); err != nil {
		return nil, s.storeError(err, c.ARN)
	}
	return &ingestConfigurationOutput{c.Wire()}, nil
}

// optionalStage checks a stageArn that may be "" (not attached).
func (s *Server) optionalStage(ctx context.Context, arn *string) (string, *Error) {
	if arn == nil || *arn == "" {
		return "", nil
	}
	if _, _, e := fetch(ctx, s, s.store.Stages, "stageArn", *arn, ivs.TypeStage); e != nil {
		return "", e
	}
	return *arn, nil
}

func (s *Server) getIngestConfiguration(ctx context.Context, in *arnInput) (*ingestConfigurationOutput, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	c, _, e := fetch(ctx, s, s.store.IngestConfigurations, "arn", arn, ivs.TypeIngestConfiguration)
	if e != nil {
		return nil, e
	}
	return &ingestConfigurationOutput{c.Wire()}, nil
}

type updateIngestConfigurationInput struct {
	ARN      *string `json:"arn"`
	StageARN *string `json:"stageArn"`
}

func (s *Server) updateIngestConfiguration(ctx context.Context,
	in *updateIngestConfigurationInput) (*ingestConfigurationOutput, *Error) {
	var v violations
	v.required("arn", in.ARN != nil)
	if e := v.err(); e != nil {
		return nil, e
	}
	_, a, e := fetch(ctx, s, s.store.IngestConfigurations, "arn", *in.ARN, ivs.TypeIngestConfiguration)
	if e != nil {
		return nil, e
	}
	stageARN, e := s.optionalStage(ctx, in.StageARN)
	if e != nil {
		return nil, e
	}
	c, err := s.store.IngestConfigurations.Update(ctx, a.ID, func(c *ivs.IngestConfiguration) error {
		if c.State == ingestActive {
			return conflict("ingest configuration %s is ACTIVE: stop the publisher first", c.ARN)
		}
		if in.StageARN != nil {
			c.StageARN = stageARN
		}
		return nil
	})
	if e := (*Error)(nil); errors.As(err, &e) {
		return nil, e
	}
	if err != nil {
		return nil, s.storeError(err, *in.ARN)
	}
	return &ingestConfigurationOutput{c.Wire()}, nil
}

type listIngestConfigurationsInput struct {
	FilterByStageARN *string `json:"filterByStageArn"`
	FilterByState    *string `json:"filterByState"`
	listInput
}

type listIngestConfigurationsOutput struct {
	IngestConfigurations []ivs.IngestConfigurationSummary `json:"ingestConfigurations"`
	NextToken            string                           `json:"nextToken,omitempty"`
}

func (s *Server) listIngestConfigurations(ctx context.Context,
	in *listIngestConfigurationsInput) (*listIngestConfigurationsOutput, *Error) {
	var v violations
	p := v.page(in.NextToken, in.MaxResults, 50)
	if in.FilterByStageARN != nil && in.FilterByState != nil {
		v.addf("only one of filterByStageArn and filterByState may be given")
	}
	if in.FilterByStageARN != nil {
		v.arn("filterByStageArn", *in.FilterByStageARN, ivs.TypeStage)
	}
	if in.FilterByState != nil {
		v.enum("filterByState", *in.FilterByState, ingestActive, ingestInactive)
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	keep := func(c ivs.IngestConfiguration) bool {
		return (in.FilterByStageARN == nil || c.StageARN == *in.FilterByStageARN) &&
			(in.FilterByState == nil || c.State == *in.FilterByState)
	}
	items, next, e := listPage(ctx, s, s.store.IngestConfigurations, "", p, keep, ivs.IngestConfiguration.Summary)
	if e != nil {
		return nil, e
	}
	return &listIngestConfigurationsOutput{items, next}, nil
}

type deleteIngestConfigurationInput struct {
	ARN   *string `json:"arn"`
	Force *bool   `json:"force"`
}

func (s *Server) deleteIngestConfiguration(ctx context.Context, in *deleteIngestConfigurationInput) (*empty, *Error) {
	var v violations
	v.required("arn", in.ARN != nil)
	if e := v.err(); e != nil {
		return nil, e
	}
	c, a, e := fetch(ctx, s, s.store.IngestConfigurations, "arn", *in.ARN, ivs.TypeIngestConfiguration)
	if e != nil {
		return nil, e
	}
	force := in.Force != nil && *in.Force
	if c.State == ingestActive {
		if !force {
			return nil, conflict("ingest configuration %s is ACTIVE: stop the publisher or delete with force", c.ARN)
		}
		if stage, err := ivs.ParseARN(c.StageARN); err == nil {
			s.signalDisconnect(stage.ID, c.ParticipantID, "ingest configuration deleted")
		}
	}
	if err := s.store.IngestConfigurations.Delete(ctx, a.ID); err != nil {
		return nil, s.storeError(err, c.ARN)
	}
	return &empty{}, nil
}
