package api

import (
	"context"

	"github.com/stagehand-rt/stagehand/internal/validation"
	"github.com/stagehand-rt/stagehand/ivs"
)

type createStorageConfigurationInput struct {
	Name *string `json:"name"`
	S3   *struct {
		BucketName *string `json:"bucketName"`
	} `json:"s3"`
	Tags map[string]string `json:"tags"`
}

type storageConfigurationOutput struct {
	StorageConfiguration ivs.StorageConfiguration `json:"storageConfiguration"`
}

func (s *Server) createStorageConfiguration(ctx context.Context,
	in *createStorageConfigurationInput) (*storageConfigurationOutput, *Error) {
	var v violations
	v.name("name", in.Name)
	v.tags("tags", in.Tags)
	bucket := ""
	if v.required("s3", in.S3 != nil) && v.required("s3.bucketName", in.S3.BucketName != nil) {
		bucket = *in.S3.BucketName
		v.length("s3.bucketName", bucket, 3, 63)
		if !validation.BucketPattern.MatchString(bucket) {
			v.add("s3.bucketName", bucket, "Member must satisfy regular expression pattern: [a-z0-9-.]+")
		}
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	id := ivs.NewID()
	c := ivs.StorageConfiguration{ARN: s.cfg.Namespace.ARN(ivs.TypeStorageConfiguration, id),
		Name: strOr(in.Name, ""), S3: ivs.S3StorageConfiguration{BucketName: bucket}, Tags: tagsOrEmpty(in.Tags)}
	if err := s.store.StorageConfigurations.Create(ctx, id, c); err != nil {
		return nil, s.storeError(err, c.ARN)
	}
	return &storageConfigurationOutput{c}, nil
}

func (s *Server) getStorageConfiguration(ctx context.Context, in *arnInput) (*storageConfigurationOutput, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	c, _, e := fetch(ctx, s, s.store.StorageConfigurations, "arn", arn, ivs.TypeStorageConfiguration)
	if e != nil {
		return nil, e
	}
	return &storageConfigurationOutput{c}, nil
}

type listStorageConfigurationsOutput struct {
	StorageConfigurations []ivs.StorageConfiguration `json:"storageConfigurations"`
	NextToken             string                     `json:"nextToken,omitempty"`
}

func (s *Server) listStorageConfigurations(ctx context.Context, in *listInput) (*listStorageConfigurationsOutput,
	*Error) {
	var v violations
	p := v.page(in.NextToken, in.MaxResults, 100)
	if e := v.err(); e != nil {
		return nil, e
	}
	items, next, e := listPage(ctx, s, s.store.StorageConfigurations, "", p, nil, identity[ivs.StorageConfiguration])
	if e != nil {
		return nil, e
	}
	return &listStorageConfigurationsOutput{items, next}, nil
}

func (s *Server) deleteStorageConfiguration(ctx context.Context, in *arnInput) (*empty, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	_, a, e := fetch(ctx, s, s.store.StorageConfigurations, "arn", arn, ivs.TypeStorageConfiguration)
	if e != nil {
		return nil, e
	}
	c, e := s.compositionUsing(ctx, func(c ivs.Composition) bool {
		for _, d := range c.Destinations {
			if d.Configuration.S3 != nil && d.Configuration.S3.StorageConfigurationARN == arn {
				return true
			}
		}
		return false
	})
	if e != nil {
		return nil, e
	}
	if c != "" {
		return nil, conflict("storage configuration %s is used by composition %s, which has not ended", arn, c)
	}
	stages, _, err := s.store.Stages.Page(ctx, "", "", 1, func(st ivs.Stage) bool {
		return st.AutoParticipantRecordingConfiguration.StorageConfigurationARN == arn
	})
	if err != nil {
		return nil, s.storeError(err, "stages")
	}
	if len(stages) > 0 {
		return nil, conflict("storage configuration %s is used for participant recording by stage %s", arn,
			stages[0].Value.ARN)
	}
	if err := s.store.StorageConfigurations.Delete(ctx, a.ID); err != nil {
		return nil, s.storeError(err, arn)
	}
	return &empty{}, nil
}
