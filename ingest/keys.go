package ingest

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
)

// Ingest configuration states, as the API reports them.
const (
	stateActive   = "ACTIVE"
	stateInactive = "INACTIVE"
)

var errUnknownKey = errors.New("unknown stream key")

// configID takes the ingest configuration id out of an IVS stream key,
// rt_<account>_<region>_<id>_<secret>.
func configID(key string) (string, bool) {
	parts := strings.SplitN(key, "_", 5)
	if len(parts) != 5 || parts[0] != "rt" || parts[3] == "" || parts[4] == "" {
		return "", false
	}
	return parts[3], true
}

// redact keeps a stream key's public part for logs: never its secret.
func redact(key string) string {
	if i := strings.LastIndexByte(key, '_'); i >= 0 && strings.HasPrefix(key, "rt_") {
		return key[:i+1] + "…"
	}
	if len(key) > 6 {
		return key[:6] + "…"
	}
	return "…"
}

// keyLike matches what looks like an IVS stream key anywhere in a text:
// rt_<account>_<region>_<id>_<secret>, the secret up to a separator.
var keyLike = regexp.MustCompile(`rt_[^_\s"'/]*_[^_\s"'/]*_[^_\s"'/]*_[^\s"'/?&#,;)}\]]+`)

// scrub redacts every stream key in s, for text that reaches a log line
// and may quote what an encoder sent (a tcUrl, a stream name).
func scrub(s string) string { return keyLike.ReplaceAllStringFunc(s, redact) }

// lookup returns the ingest configuration whose stream key is key, and its
// id, or errUnknownKey.
func (s *Server) lookup(ctx context.Context, key string) (ivs.IngestConfiguration, string, error) {
	id, ok := configID(key)
	if !ok {
		return ivs.IngestConfiguration{}, "", errUnknownKey
	}
	c, err := s.store.IngestConfigurations.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return c, "", errUnknownKey
	}
	if err != nil {
		return c, "", fmt.Errorf("look up ingest configuration %s: %w", id, err)
	}
	if subtle.ConstantTimeCompare([]byte(c.StreamKey), []byte(key)) != 1 {
		return c, "", errUnknownKey
	}
	return c, id, nil
}

var errKeyInUse = errors.New("the stream key is already publishing")

// claim marks configuration id ACTIVE for this publisher, or fails with
// errKeyInUse while another one publishes with it. release marks it
// INACTIVE again (unless it was deleted meanwhile).
func (s *Server) claim(ctx context.Context, id string) (release func(), err error) {
	s.mu.Lock()
	if _, busy := s.active[id]; busy {
		s.mu.Unlock()
		return nil, errKeyInUse
	}
	s.active[id] = struct{}{}
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.active, id)
		s.mu.Unlock()
	}
	_, err = s.store.IngestConfigurations.Update(ctx, id, func(c *ivs.IngestConfiguration) error {
		if c.State == stateActive {
			return errKeyInUse // another ingest server's publisher
		}
		c.State = stateActive
		return nil
	})
	if err != nil {
		forget()
		if errors.Is(err, store.ErrNotFound) {
			return nil, errUnknownKey
		}
		return nil, err
	}
	return func() {
		defer forget()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		_, err := s.store.IngestConfigurations.Update(ctx, id, func(c *ivs.IngestConfiguration) error {
			c.State = stateInactive
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("mark ingest configuration INACTIVE", "ingest", id, "error", err)
		}
	}, nil
}
