package api

import (
	"context"
	"net/http"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
)

// withARN binds a tag operation to the ARN taken from its path.
func (s *Server) withARN(arn string, fn func(ctx context.Context, arn string, r *http.Request, body []byte) (any,
	*Error)) operation {
	return func(ctx context.Context, r *http.Request, body []byte) (any, *Error) {
		return fn(ctx, arn, r, body)
	}
}

// tagTable edits the tags of whatever resource an ARN names.
type tagTable interface {
	getTags(ctx context.Context, id string) (ivs.Tags, error)
	updateTags(ctx context.Context, id string, change func(ivs.Tags) ivs.Tags) error
}

type tagged[T any] struct {
	t    *store.Table[T]
	tags func(*T) *ivs.Tags
}

func (x tagged[T]) getTags(ctx context.Context, id string) (ivs.Tags, error) {
	v, err := x.t.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return *x.tags(&v), nil
}

func (x tagged[T]) updateTags(ctx context.Context, id string, change func(ivs.Tags) ivs.Tags) error {
	_, err := x.t.Update(ctx, id, func(v *T) error {
		p := x.tags(v)
		*p = change(*p)
		return nil
	})
	return err
}

func (s *Server) tagTables() map[string]tagTable {
	st := s.store
	return map[string]tagTable{
		ivs.TypeStage: tagged[ivs.Stage]{st.Stages, func(v *ivs.Stage) *ivs.Tags { return &v.Tags }},
		ivs.TypeComposition: tagged[ivs.Composition]{st.Compositions,
			func(v *ivs.Composition) *ivs.Tags { return &v.Tags }},
		ivs.TypeEncoderConfiguration: tagged[ivs.EncoderConfiguration]{st.EncoderConfigurations,
			func(v *ivs.EncoderConfiguration) *ivs.Tags { return &v.Tags }},
		ivs.TypeStorageConfiguration: tagged[ivs.StorageConfiguration]{st.StorageConfigurations,
			func(v *ivs.StorageConfiguration) *ivs.Tags { return &v.Tags }},
		ivs.TypeIngestConfiguration: tagged[ivs.IngestConfiguration]{st.IngestConfigurations,
			func(v *ivs.IngestConfiguration) *ivs.Tags { return &v.Tags }},
		ivs.TypePublicKey: tagged[ivs.PublicKey]{st.PublicKeys,
			func(v *ivs.PublicKey) *ivs.Tags { return &v.Tags }},
	}
}

// taggable finds the table and id of a tagged resource.
func (s *Server) taggable(arn string) (tagTable, string, *Error) {
	a, err := ivs.ParseARN(arn)
	if err != nil {
		return nil, "", validationError("1 validation error detected: Value '%s' at 'resourceArn' failed to satisfy "+
			"constraint: Member must satisfy regular expression pattern: "+
			"arn:aws:ivs:[a-z0-9-]+:[0-9]+:[a-z-]+/[a-zA-Z0-9-]+", truncate(arn))
	}
	t, ok := s.tagTables()[a.Type]
	if !ok || !s.cfg.Namespace.Owns(a, a.Type) {
		return nil, "", notFound("resource %s not found", arn)
	}
	return t, a.ID, nil
}

type tagsOutput struct {
	Tags ivs.Tags `json:"tags"`
}

func (s *Server) listTagsForResource(ctx context.Context, arn string, _ *http.Request, _ []byte) (any, *Error) {
	t, id, e := s.taggable(arn)
	if e != nil {
		return nil, e
	}
	tags, err := t.getTags(ctx, id)
	if err != nil {
		return nil, s.storeError(err, arn)
	}
	return &tagsOutput{tagsOrEmpty(tags)}, nil
}

type tagResourceInput struct {
	Tags map[string]string `json:"tags"`
}

func (s *Server) tagResource(ctx context.Context, arn string, _ *http.Request, body []byte) (any, *Error) {
	in := &tagResourceInput{}
	if e := decode(body, in); e != nil {
		return nil, e
	}
	var v violations
	v.required("tags", in.Tags != nil)
	v.tags("tags", in.Tags)
	if e := v.err(); e != nil {
		return nil, e
	}
	t, id, e := s.taggable(arn)
	if e != nil {
		return nil, e
	}
	var tooMany *Error
	err := t.updateTags(ctx, id, func(cur ivs.Tags) ivs.Tags {
		merged := ivs.Tags{}
		for k, val := range cur {
			merged[k] = val
		}
		for k, val := range in.Tags {
			merged[k] = val
		}
		if len(merged) > 50 {
			tooMany = validationError("resource %s would have %d tags; at most 50 are allowed", arn, len(merged))
			return cur
		}
		return merged
	})
	if err != nil {
		return nil, s.storeError(err, arn)
	}
	if tooMany != nil {
		return nil, tooMany
	}
	return &empty{}, nil
}

func (s *Server) untagResource(ctx context.Context, arn string, r *http.Request, _ []byte) (any, *Error) {
	keys, present := r.URL.Query()["tagKeys"]
	var v violations
	v.required("tagKeys", present)
	if len(keys) > 50 {
		v.add("tagKeys", len(keys), "Member must have length less than or equal to 50")
	}
	for _, k := range keys {
		v.length("tagKeys.member", k, 1, 128)
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	t, id, e := s.taggable(arn)
	if e != nil {
		return nil, e
	}
	err := t.updateTags(ctx, id, func(cur ivs.Tags) ivs.Tags {
		out := ivs.Tags{}
		for k, val := range cur {
			out[k] = val
		}
		for _, k := range keys {
			delete(out, k)
		}
		return out
	})
	if err != nil {
		return nil, s.storeError(err, arn)
	}
	return &empty{}, nil
}
