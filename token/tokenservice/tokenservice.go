// Package tokenservice mints the SUBSCRIBE tokens compositions and
// participant recordings join their stage with, so that no worker holds
// the token-signing key: control answers workers' NATS requests (Serve),
// workers ask (Client). A token is minted only for a composition that has
// not ended, or a participant recording that is live, and lasts a day.
package tokenservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
)

// ParticipantPrefix starts every participant id minted here: the stage's
// composition-subscriber prefix (stage.CompositionParticipantPrefix), which
// the stage hides from other participants.
const ParticipantPrefix = "composition-"

// Lifetime of a minted token: long enough for a long composition to
// reconnect with it, far shorter than a participant token's 14 days.
const Lifetime = 24 * time.Hour

// ErrRefused is returned when the composition or recording no longer runs.
var ErrRefused = errors.New("tokenservice: refused")

// Request asks for one token: CompositionID, or StageID and ParticipantID
// of a participant recording.
type Request struct {
	CompositionID string `json:"compositionId,omitempty"`
	StageID       string `json:"stageId,omitempty"`
	ParticipantID string `json:"participantId,omitempty"`
}

type reply struct {
	Token string `json:"token,omitempty"`
	Error string `json:"error,omitempty"`
}

// Minter checks a request against the store and signs its token.
type Minter struct {
	Store  *store.Store
	Signer *token.Signer
}

// CompositionToken mints the token of a composition that has not ended.
func (m Minter) CompositionToken(ctx context.Context, id string) (string, error) {
	return m.Mint(ctx, Request{CompositionID: id})
}

// RecordingToken mints the token that records a live participant.
func (m Minter) RecordingToken(ctx context.Context, stageID, participantID string) (string, error) {
	return m.Mint(ctx, Request{StageID: stageID, ParticipantID: participantID})
}

// Mint checks r and signs its token.
func (m Minter) Mint(ctx context.Context, r Request) (string, error) {
	var (
		st  ivs.Stage
		pid string
		err error
	)
	switch {
	case r.CompositionID != "":
		st, err = m.composition(ctx, r.CompositionID)
		pid = ParticipantPrefix + r.CompositionID
	case r.StageID != "" && r.ParticipantID != "":
		st, err = m.recording(ctx, r.StageID, r.ParticipantID)
		pid = ParticipantPrefix + "rec-" + r.ParticipantID + "-" + ivs.RandomString(6)
	default:
		err = fmt.Errorf("%w: empty request", ErrRefused)
	}
	if err != nil {
		return "", err
	}
	a, err := ivs.ParseARN(st.ARN)
	if err != nil {
		return "", err
	}
	now := time.Now().Truncate(time.Second)
	return m.Signer.Sign(token.Claims{ParticipantID: pid, UserID: "composition", StageARN: st.ARN, StageID: a.ID,
		EventsURL: st.Endpoints.Events, WhipURL: st.Endpoints.WHIP, Subscribe: true,
		IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(Lifetime)})
}

func (m Minter) composition(ctx context.Context, id string) (ivs.Stage, error) {
	c, err := m.Store.Compositions.Get(ctx, id)
	if err != nil {
		return ivs.Stage{}, fmt.Errorf("composition %s: %w", id, err)
	}
	if c.Ended() {
		return ivs.Stage{}, fmt.Errorf("%w: composition %s is %s", ErrRefused, id, c.State)
	}
	a, err := ivs.ParseARN(c.StageARN)
	if err != nil {
		return ivs.Stage{}, err
	}
	return m.Store.Stages.Get(ctx, a.ID)
}

func (m Minter) recording(ctx context.Context, stageID, pid string) (ivs.Stage, error) {
	st, err := m.Store.Stages.Get(ctx, stageID)
	if err != nil {
		return st, fmt.Errorf("stage %s: %w", stageID, err)
	}
	rec, err := m.Store.Recordings.Get(ctx, stageID+"."+st.ActiveSessionID+"."+pid)
	if err != nil {
		return st, fmt.Errorf("recording of %s on %s: %w", pid, stageID, err)
	}
	if !rec.Live() {
		return st, fmt.Errorf("%w: recording of %s on %s is %s", ErrRefused, pid, stageID, rec.State)
	}
	return st, nil
}

// Serve answers requests on subject with m until the returned
// subscription is drained or unsubscribed. The server's permissions let
// only control subscribe there.
func Serve(nc *nats.Conn, subject string, m Minter, log *slog.Logger) (*nats.Subscription, error) {
	log = log.With("component", "tokenservice")
	sub, err := nc.QueueSubscribe(subject, "control", func(msg *nats.Msg) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var (
			r   Request
			out reply
		)
		err := json.Unmarshal(msg.Data, &r)
		if err == nil {
			out.Token, err = m.Mint(ctx, r)
		}
		if err != nil {
			log.Warn("subscribe token refused", "request", string(msg.Data), "error", err)
			out.Error = err.Error()
		}
		b, _ := json.Marshal(out)
		_ = msg.Respond(b)
	})
	if err != nil {
		return nil, fmt.Errorf("tokenservice: subscribe %s: %w", subject, err)
	}
	return sub, nil
}

// Client asks control for tokens over NATS.
type Client struct {
	NC      *nats.Conn
	Subject string
}

// CompositionToken asks for a composition's token.
func (c Client) CompositionToken(ctx context.Context, id string) (string, error) {
	return c.ask(ctx, Request{CompositionID: id})
}

// RecordingToken asks for a participant recording's token.
func (c Client) RecordingToken(ctx context.Context, stageID, participantID string) (string, error) {
	return c.ask(ctx, Request{StageID: stageID, ParticipantID: participantID})
}

func (c Client) ask(ctx context.Context, r Request) (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := c.NC.RequestWithContext(ctx, c.Subject, b)
	if err != nil {
		return "", fmt.Errorf("tokenservice: request: %w", err)
	}
	var out reply
	if err := json.Unmarshal(msg.Data, &out); err != nil {
		return "", fmt.Errorf("tokenservice: reply: %w", err)
	}
	if out.Error != "" {
		return "", fmt.Errorf("%w: %s", ErrRefused, out.Error)
	}
	return out.Token, nil
}
