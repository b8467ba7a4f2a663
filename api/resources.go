package api

import (
	"context"
	"fmt"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
)

// fetch reads the resource an ARN names. A malformed ARN is a validation
// error; an ARN of another region or account, or an unknown id, is
// ResourceNotFoundException.
func fetch[T any](ctx context.Context, s *Server, t *store.Table[T], field, arn, typ string) (T, ivs.ARN, *Error) {
	var zero T
	var v violations
	a, ok := v.arn(field, arn, typ)
	if !ok {
		return zero, a, v.err()
	}
	if !s.cfg.Namespace.Owns(a, typ) {
		return zero, a, notFound("%s %s not found", typ, arn)
	}
	x, err := t.Get(ctx, a.ID)
	if err != nil {
		return zero, a, s.storeError(err, fmt.Sprintf("%s %s", typ, arn))
	}
	return x, a, nil
}

// listPage reads one page of a table and converts each item.
func listPage[T any, S any](ctx context.Context, s *Server, t *store.Table[T], prefix string, p page,
	keep func(T) bool, conv func(T) S) ([]S, string, *Error) {
	items, more, err := t.Page(ctx, prefix, p.after, p.limit, keep)
	if err != nil {
		return nil, "", s.storeError(err, "listing")
	}
	out := make([]S, 0, len(items))
	last := ""
	for _, it := range items {
		out = append(out, conv(it.Value))
		last = it.Key
	}
	return out, nextToken(last, more), nil
}

func identity[T any](x T) T { return x }
