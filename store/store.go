// Package store keeps the control plane's resources in NATS JetStream
// key-value buckets: one bucket per resource type, JSON values, keys made of
// resource ids. Updates are compare-and-set, so API servers and workers on
// many machines can change the same composition without losing a write.
//
// The store knows nothing of IVS rules; package api validates requests and
// workers update composition states through it.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-rt/stagehand/ivs"
)

// Errors a table returns; callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Config sizes the buckets.
type Config struct {
	// Replicas is each bucket's replication factor: 1, or 3 on a 3-node cluster.
	Replicas int
	// Prefix starts every bucket name; default "stagehand".
	Prefix string
	// Retention is how long a stage session, a participant record and a
	// participant event are kept after their last write; default 14 days
	// (docs/security/stage.md).
	Retention time.Duration
	// Bind opens buckets that exist and never creates or updates one: a
	// worker may not configure streams (one could source the secrets).
	Bind bool
	// Without names tables left closed (nil), such as "secrets": a worker
	// may not read them.
	Without []string
}

// DefaultRetention keeps two weeks of stage history.
const DefaultRetention = 14 * 24 * time.Hour

// Store holds one table per resource type.
type Store struct {
	Stages       *Table[ivs.Stage]
	Sessions     *Table[ivs.StageSession] // key <stage id>.<session id>
	Participants *Table[ivs.Participant]  // key <stage id>.<session id>.<participant id>
	Events       *Table[ivs.Event]        // key <stage id>.<session id>.<participant id>.<seq>
	// Recordings holds individual participant recordings, under
	// <stage id>.<session id>.<participant id>: the latest one.
	Recordings            *Table[ivs.ParticipantRecording]
	EncoderConfigurations *Table[ivs.EncoderConfiguration]
	StorageConfigurations *Table[ivs.StorageConfiguration]
	IngestConfigurations  *Table[ivs.IngestConfiguration]
	PublicKeys            *Table[ivs.PublicKey]
	Compositions          *Table[ivs.Composition]
	// Idempotency maps a StartComposition idempotency token to the
	// composition it created.
	Idempotency *Table[string]
	// Revocations holds participants DisconnectParticipant revoked, under
	// <stage id>.<participant id>.
	Revocations *Table[time.Time]
	// Secrets holds the server's own keys (the token-signing key).
	Secrets *Table[string]

	js  jetstream.JetStream
	cfg Config
}

// Open creates the buckets that do not exist yet and returns the store. It
// is safe to call from many processes at once.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "stagehand"
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	s := &Store{js: js, cfg: cfg}
	var err error
	open := func(name string, ttl time.Duration) jetstream.KeyValue {
		if err != nil || slices.Contains(cfg.Without, name) {
			return nil
		}
		var kv jetstream.KeyValue
		kv, err = s.bucket(ctx, name, ttl)
		return kv
	}
	s.Stages = newTable[ivs.Stage](open("stages", 0))
	// Stage history is bounded in time: participants' events, however
	// many, go once Retention has passed.
	s.Sessions = newTable[ivs.StageSession](open("sessions", cfg.Retention))
	s.Participants = newTable[ivs.Participant](open("participants", cfg.Retention))
	s.Events = newTable[ivs.Event](open("events", cfg.Retention))
	s.Recordings = newTable[ivs.ParticipantRecording](open("participant_recordings", 0))
	s.EncoderConfigurations = newTable[ivs.EncoderConfiguration](open("encoder_configurations", 0))
	s.StorageConfigurations = newTable[ivs.StorageConfiguration](open("storage_configurations", 0))
	s.IngestConfigurations = newTable[ivs.IngestConfiguration](open("ingest_configurations", 0))
	s.PublicKeys = newTable[ivs.PublicKey](open("public_keys", 0))
	s.Compositions = newTable[ivs.Composition](open("compositions", 0))
	// AWS keeps idempotency tokens for a limited time; a day is generous.
	s.Idempotency = newTable[string](open("idempotency", 24*time.Hour))
	// Tokens live at most 14 days: a revocation needs to outlive them only.
	s.Revocations = newTable[time.Time](open("revocations", 15*24*time.Hour))
	s.Secrets = newTable[string](open("secrets", 0))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Table is one bucket of JSON values of type T.
type Table[T any] struct {
	kv jetstream.KeyValue
}

func newTable[T any](kv jetstream.KeyValue) *Table[T] {
	if kv == nil {
		return nil
	}
	return &Table[T]{kv: kv}
}

func (s *Store) bucket(ctx context.Context, name string, ttl time.Duration) (jetstream.KeyValue, error) {
	if s.cfg.Bind {
		kv, err := s.js.KeyValue(ctx, s.cfg.Prefix+"_"+name)
		if err != nil {
			return nil, fmt.Errorf("store: bind bucket %s: %w", name, err)
		}
		return kv, nil
	}
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   s.cfg.Prefix + "_" + name,
		Storage:  jetstream.FileStorage,
		Replicas: s.cfg.Replicas,
		History:  1,
		TTL:      ttl,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open bucket %s: %w", name, err)
	}
	return kv, nil
}

// OpenTable opens (creating it if need be) a table beside the store's own,
// for a package's private state: the stage cluster's leases, say. Each
// value lives at most ttl after its last write (0: for ever).
func OpenTable[T any](ctx context.Context, s *Store, name string, ttl time.Duration) (*Table[T], error) {
	kv, err := s.bucket(ctx, name, ttl)
	if err != nil {
		return nil, err
	}
	return newTable[T](kv), nil
}

// Get returns the value under key, or ErrNotFound.
func (t *Table[T]) Get(ctx context.Context, key string) (T, error) {
	v, _, err := t.get(ctx, key)
	return v, err
}

func (t *Table[T]) get(ctx context.Context, key string) (T, uint64, error) {
	var v T
	e, err := t.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return v, 0, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return v, 0, fmt.Errorf("store: get %s/%s: %w", t.kv.Bucket(), key, err)
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("store: decode %s/%s: %w", t.kv.Bucket(), key, err)
	}
	return v, e.Revision(), nil
}

// Create stores v under key, or returns ErrExists.
func (t *Table[T]) Create(ctx context.Context, key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s/%s: %w", t.kv.Bucket(), key, err)
	}
	if _, err := t.kv.Create(ctx, key, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("%s: %w", key, ErrExists)
		}
		return fmt.Errorf("store: create %s/%s: %w", t.kv.Bucket(), key, err)
	}
	return nil
}

// Put stores v under key whatever was there.
func (t *Table[T]) Put(ctx context.Context, key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s/%s: %w", t.kv.Bucket(), key, err)
	}
	if _, err := t.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("store: put %s/%s: %w", t.kv.Bucket(), key, err)
	}
	return nil
}

// Update applies change to the current value and stores the result if
// nobody wrote in between; otherwise it reads again and retries. An error
// from change aborts the update and is returned as is.
func (t *Table[T]) Update(ctx context.Context, key string, change func(*T) error) (T, error) {
	for {
		v, rev, err := t.get(ctx, key)
		if err != nil {
			return v, err
		}
		if err := change(&v); err != nil {
			return v, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return v, fmt.Errorf("store: encode %s/%s: %w", t.kv.Bucket(), key, err)
		}
		_, err = t.kv.Update(ctx, key, b, rev)
		if err == nil {
			return v, nil
		}
		if !isWrongRevision(err) {
			return v, fmt.Errorf("store: update %s/%s: %w", t.kv.Bucket(), key, err)
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
	}
}

func isWrongRevision(err error) bool {
	// Replicated (R3) buckets report a conflict with another code than
	// single-node ones; ErrKeyRevisionMismatch matches both.
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// Delete removes key, or returns ErrNotFound.
func (t *Table[T]) Delete(ctx context.Context, key string) error {
	if _, err := t.kv.Get(ctx, key); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return fmt.Errorf("store: delete %s/%s: %w", t.kv.Bucket(), key, err)
	}
	// Purge rather than Delete: nothing reads the history of a deleted key.
	if err := t.kv.Purge(ctx, key); err != nil {
		return fmt.Errorf("store: delete %s/%s: %w", t.kv.Bucket(), key, err)
	}
	return nil
}

// DeleteIf removes key if its value passes cond and nobody wrote it in
// between; it reports whether it did. A key that does not exist is not an
// error.
func (t *Table[T]) DeleteIf(ctx context.Context, key string, cond func(T) bool) (bool, error) {
	v, rev, err := t.get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil || !cond(v) {
		return false, err
	}
	if err := t.kv.Purge(ctx, key, jetstream.LastRevision(rev)); err != nil {
		if isWrongRevision(err) {
			return false, nil
		}
		return false, fmt.Errorf("store: delete %s/%s: %w", t.kv.Bucket(), key, err)
	}
	return true, nil
}

// Keys returns the keys that start with prefix, sorted; a prefix that ends
// in "." is a key path such as "<stage id>.<session id>.".
func (t *Table[T]) Keys(ctx context.Context, prefix string) ([]string, error) {
	// Subject wildcards match whole tokens only: "<stage>.>" narrows the
	// listing on the server, any other prefix is filtered here.
	filter := ">"
	if strings.HasSuffix(prefix, ".") {
		filter = prefix + ">"
	}
	lister, err := t.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", t.kv.Bucket(), err)
	}
	var keys []string
	for k := range lister.Keys() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Item is one key and its value.
type Item[T any] struct {
	Key   string
	Value T
}

// Page is one page of a listing: keys after `after`, in key order, at most
// limit of them, for which keep returns true. More says whether any were
// left.
func (t *Table[T]) Page(ctx context.Context, prefix, after string, limit int, keep func(T) bool) (items []Item[T],
	more bool, err error) {
	keys, err := t.Keys(ctx, prefix)
	if err != nil {
		return nil, false, err
	}
	start, _ := slices.BinarySearch(keys, after)
	if start < len(keys) && keys[start] == after {
		start++
	}
	for _, k := range keys[start:] {
		v, err := t.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, false, err
		}
		if keep != nil && !keep(v) {
			continue
		}
		if len(items) == limit {
			return items, true, nil
		}
		items = append(items, Item[T]{k, v})
	}
	return items, false, nil
}
