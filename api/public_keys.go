package api

import (
	"context"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/token"
)

type importPublicKeyInput struct {
	Name              *string           `json:"name"`
	PublicKeyMaterial *string           `json:"publicKeyMaterial"`
	Tags              map[string]string `json:"tags"`
}

type publicKeyOutput struct {
	PublicKey ivs.PublicKey `json:"publicKey"`
}

func (s *Server) importPublicKey(ctx context.Context, in *importPublicKeyInput) (*publicKeyOutput, *Error) {
	var v violations
	v.name("name", in.Name)
	v.tags("tags", in.Tags)
	fingerprint := ""
	if v.required("publicKeyMaterial", in.PublicKeyMaterial != nil) {
		pub, err := token.ParsePublicKey(*in.PublicKeyMaterial)
		if err != nil {
			v.addf("Value at 'publicKeyMaterial' failed to satisfy constraint: %v", err)
		} else {
			fingerprint = token.Fingerprint(pub)
		}
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	dup, _, err := s.store.PublicKeys.Page(ctx, "", "", 1,
		func(k ivs.PublicKey) bool { return k.Fingerprint == fingerprint })
	if err != nil {
		return nil, s.storeError(err, "public keys")
	}
	if len(dup) > 0 {
		return nil, conflict("this public key is already imported as %s", dup[0].Value.ARN)
	}
	id := ivs.NewID()
	k := ivs.PublicKey{ARN: s.cfg.Namespace.ARN(ivs.TypePublicKey, id), Name: strOr(in.Name, ""),
		PublicKeyMaterial: *in.PublicKeyMaterial, Fingerprint: fingerprint, Tags: tagsOrEmpty(in.Tags)}
	if err := s.store.PublicKeys.Create(ctx, id, k); err != nil {
		return nil, s.storeError(err, k.ARN)
	}
	return &publicKeyOutput{k}, nil
}

func (s *Server) getPublicKey(ctx context.Context, in *arnInput) (*publicKeyOutput, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	k, _, e := fetch(ctx, s, s.store.PublicKeys, "arn", arn, ivs.TypePublicKey)
	if e != nil {
		return nil, e
	}
	return &publicKeyOutput{k}, nil
}

type listPublicKeysOutput struct {
	PublicKeys []ivs.PublicKeySummary `json:"publicKeys"`
	NextToken  string                 `json:"nextToken,omitempty"`
}

func (s *Server) listPublicKeys(ctx context.Context, in *listInput) (*listPublicKeysOutput, *Error) {
	var v violations
	p := v.page(in.NextToken, in.MaxResults, 50)
	if e := v.err(); e != nil {
		return nil, e
	}
	items, next, e := listPage(ctx, s, s.store.PublicKeys, "", p, nil, ivs.PublicKey.Summary)
	if e != nil {
		return nil, e
	}
	return &listPublicKeysOutput{items, next}, nil
}

func (s *Server) deletePublicKey(ctx context.Context, in *arnInput) (*empty, *Error) {
	var v violations
	arn := in.arn(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	_, a, e := fetch(ctx, s, s.store.PublicKeys, "arn", arn, ivs.TypePublicKey)
	if e != nil {
		return nil, e
	}
	// Tokens signed by the key stop verifying as soon as it is gone.
	if err := s.store.PublicKeys.Delete(ctx, a.ID); err != nil {
		return nil, s.storeError(err, arn)
	}
	return &empty{}, nil
}
