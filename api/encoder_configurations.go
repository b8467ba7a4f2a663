package api

import (
	"context"

	"github.com/stagehand-rt/stagehand/ivs"
)

type videoInput struct {
	Width     *int     `json:"width"`
	Height    *int     `json:"height"`
	Framerate *float64 `json:"framerate"`
	Bitrate   *int     `json:"bitrate"`
}

type createEncoderConfigurationInput struct {
	Name  *string           `json:"name"`
	Video *videoInput       `json:"video"`
	Tags  map[string]string `json:"tags"`
}

type encoderConfigurationOutput struct {
	EncoderConfiguration ivs.EncoderConfiguration `json:"encoderConfiguration"`
}

func (s *Server) createEncoderConfiguration(ctx context.Context,
	in *createEncoderConfigurationInput) (*encoderConfigurationOutput, *Error) {
	var v violations
	v.name("name", in.Name)
	v.tags("tags", in.Tags)
	video := ivs.Video{Width: 1280, Height: 720, Framerate: 30, Bitrate: 2_500_000}
	if in.Video != nil {
		video = validateVideo(&v, in.Video)
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	id := ivs.NewID()
	c := ivs.EncoderConfiguration{ARN: s.cfg.Namespace.ARN(ivs.TypeEncoderConfiguration, id),
		Name: strOr(in.Name, ""), Video: video, Tags: tagsOrEmpty(in.Tags)}
	if err := s.store.EncoderConfigurations.Create(ctx, id, c); err != nil {
		return nil, s.storeError(err, c.ARN)
	}
	return &encoderConfigurationOutput{c}, nil
}

// validateVideo applies IVS's video limits and defaults.
func validateVideo(v *violations, in *videoInput) ivs.Video {
	out := ivs.Video{Width: intOr(in.Width, 1280), Height: intOr(in.Height, 720), Framerate: 30,
		Bitrate: intOr(in.Bitrate, 2_500_000)}
	if in.Framerate != nil {
		out.Framerate = *in.Framerate
	}
	side := func(field string, x int) {
		v.intRange(field, &x, 2, 1920)
		if x%2 != 0 {
			v.add(field, x, "Member must be an even number")
		}
	}
	side("video.width", out.Width)
	side("video.height", out.Height)
	if px := out.Width * out.Height; px > 2_073_600 {
		v.addf("Value '%dx%d' at 'video' failed to satisfy constraint: width*height must be at most 2073600 (1920x1080 or "+
			"1080x1920)", out.Width, out.Height)
	}
	if out.Framerate < 1 || out.Framerate > 60 {
		v.add("video.framerate", out.Framerate, "Member must have value between 1 and 60")
	}
	v.intRange("video.bitrate", &out.Bitrate, 1, 8_500_000)
	return out
}

type arnInput struct {
	ARN *string `json:"arn"`
}

func (in *arnInput) arn(v *violations) string {
	v.required("arn", in.ARN != nil)
	return strOr(in.ARN, "")
}

func (s *Server) getEncoderConfiguration(ctx context.Context, in *arnInput) (*encoderConfigurationOutput, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	c, _, e := fetch(ctx, s, s.store.EncoderConfigurations, "arn", arn, ivs.TypeEncoderConfiguration)
	if e != nil {
		return nil, e
	}
	return &encoderConfigurationOutput{c}, nil
}

type listInput struct {
	NextToken  *string `json:"nextToken"`
	MaxResults *int    `json:"maxResults"`
}

type listEncoderConfigurationsOutput struct {
	EncoderConfigurations []ivs.EncoderConfigurationSummary `json:"encoderConfigurations"`
	NextToken             string                            `json:"nextToken,omitempty"`
}

func (s *Server) listEncoderConfigurations(ctx context.Context, in *listInput) (*listEncoderConfigurationsOutput,
	*Error) {
	var v violations
	p := v.page(in.NextToken, in.MaxResults, 100)
	if e := v.err(); e != nil {
		return nil, e
	}
	items, next, e := listPage(ctx, s, s.store.EncoderConfigurations, "", p, nil, ivs.EncoderConfiguration.Summary)
	if e != nil {
		return nil, e
	}
	return &listEncoderConfigurationsOutput{items, next}, nil
}

func (s *Server) deleteEncoderConfiguration(ctx context.Context, in *arnInput) (*empty, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	_, a, e := fetch(ctx, s, s.store.EncoderConfigurations, "arn", arn, ivs.TypeEncoderConfiguration)
	if e != nil {
		return nil, e
	}
	if c, e := s.compositionUsing(ctx, func(c ivs.Composition) bool { return usesEncoder(c, arn) }); e != nil {
		return nil, e
	} else if c != "" {
		return nil, conflict("encoder configuration %s is used by composition %s, which has not ended", arn, c)
	}
	if err := s.store.EncoderConfigurations.Delete(ctx, a.ID); err != nil {
		return nil, s.storeError(err, arn)
	}
	return &empty{}, nil
}

// compositionUsing returns the ARN of a composition that has not ended and
// matches uses, or "".
func (s *Server) compositionUsing(ctx context.Context, uses func(ivs.Composition) bool) (string, *Error) {
	items, _, err := s.store.Compositions.Page(ctx, "", "", -1, func(c ivs.Composition) bool {
		return !c.Ended() && uses(c)
	})
	if err != nil {
		return "", s.storeError(err, "compositions")
	}
	if len(items) > 0 {
		return items[0].Value.ARN, nil
	}
	return "", nil
}

func usesEncoder(c ivs.Composition, arn string) bool {
	for _, d := range c.Destinations {
		if ch := d.Configuration.Channel; ch != nil && ch.EncoderConfigurationARN == arn {
			return true
		}
		if s3 := d.Configuration.S3; s3 != nil {
			for _, e := range s3.EncoderConfigurationARNs {
				if e == arn {
					return true
				}
			}
		}
	}
	return false
}
