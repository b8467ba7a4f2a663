package api

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stagesignal"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

// signalDisconnect tells the stage's servers to drop the participant
// (stagesignal.Everyone: everyone).
func (s *Server) signalDisconnect(stageID, participantID, reason string) {
	if s.nc == nil {
		return
	}
	b, _ := json.Marshal(stagesignal.Disconnect{ParticipantID: participantID, Reason: reason})
	if err := s.nc.Publish(stagesignal.DisconnectSubject(stageID), b); err != nil {
		s.log.Warn("signal disconnect", "stage", stageID, "participant", participantID, "error", err)
	}
}

type disconnectParticipantInput struct {
	StageARN      *string `json:"stageArn"`
	ParticipantID *string `json:"participantId"`
	Reason        *string `json:"reason"`
}

func (s *Server) disconnectParticipant(ctx context.Context, in *disconnectParticipantInput) (*empty, *Error) {
	var v violations
	v.required("stageArn", in.StageARN != nil)
	if v.required("participantId", in.ParticipantID != nil) {
		v.participantID("participantId", *in.ParticipantID)
	}
	if in.Reason != nil {
		v.length("reason", *in.Reason, 0, 128)
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	st, a, e := fetch(ctx, s, s.store.Stages, "stageArn", *in.StageARN, ivs.TypeStage)
	if e != nil {
		return nil, e
	}
	pid := *in.ParticipantID
	// IVS revokes the participant for good: its token cannot join again.
	if err := s.store.Revocations.Put(ctx, tokenstore.RevocationKey(a.ID, pid), s.now()); err != nil {
		return nil, s.storeError(err, "revocation")
	}
	// A participant publishing through an ingest configuration detaches it.
	ingests, _, err := s.store.IngestConfigurations.Page(ctx, "", "", 1, func(c ivs.IngestConfiguration) bool {
		return c.StageARN == st.ARN && c.ParticipantID == pid
	})
	if err != nil {
		return nil, s.storeError(err, "ingest configurations")
	}
	for _, it := range ingests {
		if _, err := s.store.IngestConfigurations.Update(ctx, it.Key, func(c *ivs.IngestConfiguration) error {
			c.StageARN = ""
			return nil
		}); err != nil {
			return nil, s.storeError(err, it.Value.ARN)
		}
	}
	s.signalDisconnect(a.ID, pid, strOr(in.Reason, ""))
	return &empty{}, nil
}

type sessionInput struct {
	StageARN  *string `json:"stageArn"`
	SessionID *string `json:"sessionId"`
}

// validate checks the stage ARN and session id and returns the stage id.
func (in *sessionInput) validate(v *violations) string {
	id := ""
	if v.required("stageArn", in.StageARN != nil) {
		a, _ := v.arn("stageArn", *in.StageARN, ivs.TypeStage)
		id = a.ID
	}
	if v.required("sessionId", in.SessionID != nil) {
		v.sessionID("sessionId", *in.SessionID)
	}
	return id
}

type stageSessionOutput struct {
	StageSession ivs.StageSession `json:"stageSession"`
}

func (s *Server) getStageSession(ctx context.Context, in *sessionInput) (*stageSessionOutput, *Error) {
	var v violations
	stageID := in.validate(&v)
	if e := v.err(); e != nil {
		return nil, e
	}
	ss, err := s.store.Sessions.Get(ctx, stageID+"."+*in.SessionID)
	if err != nil {
		return nil, s.storeError(err, "stage session "+*in.SessionID+" of "+*in.StageARN)
	}
	return &stageSessionOutput{ss}, nil
}

type listStageSessionsInput struct {
	StageARN *string `json:"stageArn"`
	listInput
}

type listStageSessionsOutput struct {
	StageSessions []ivs.StageSession `json:"stageSessions"`
	NextToken     string             `json:"nextToken,omitempty"`
}

func (s *Server) listStageSessions(ctx context.Context, in *listStageSessionsInput) (*listStageSessionsOutput, *Error) {
	var v violations
	p := v.page(in.NextToken, in.MaxResults, 50)
	stageID := ""
	if v.required("stageArn", in.StageARN != nil) {
		a, _ := v.arn("stageArn", *in.StageARN, ivs.TypeStage)
		stageID = a.ID
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	all, _, err := s.store.Sessions.Page(ctx, stageID+".", "", -1, nil)
	if err != nil {
		return nil, s.storeError(err, "listing")
	}
	items, next := newestFirst(all, p)
	return &listStageSessionsOutput{items, next}, nil
}

// newestFirst is one page of a stage's sessions, the latest first, as IVS
// lists them (list-stage-sessions --max-results 1 is the current one). The
// token is the last session's id.
func newestFirst(all []store.Item[ivs.StageSession], p page) ([]ivs.StageSession, string) {
	slices.SortFunc(all, func(a, b store.Item[ivs.StageSession]) int {
		if c := b.Value.StartTime.Compare(a.Value.StartTime); c != 0 {
			return c
		}
		return strings.Compare(a.Value.SessionID, b.Value.SessionID)
	})
	start := 0
	if p.after != "" {
		start = len(all) // a token for a session no longer listed: the end
		for i, it := range all {
			if it.Value.SessionID == p.after {
				start = i + 1
				break
			}
		}
	}
	end := min(len(all), start+p.limit)
	out := make([]ivs.StageSession, 0, end-start)
	for _, it := range all[start:end] {
		out = append(out, it.Value)
	}
	if end == len(all) || len(out) == 0 {
		return out, ""
	}
	return out, nextToken(out[len(out)-1].SessionID, true)
}

type getParticipantInput struct {
	sessionInput
	ParticipantID *string `json:"participantId"`
}

type participantOutput struct {
	Participant ivs.Participant `json:"participant"`
}

func (s *Server) getParticipant(ctx context.Context, in *getParticipantInput) (*participantOutput, *Error) {
	var v violations
	stageID := in.validate(&v)
	if v.required("participantId", in.ParticipantID != nil) {
		v.participantID("participantId", *in.ParticipantID)
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	p, err := s.store.Participants.Get(ctx, stageID+"."+*in.SessionID+"."+*in.ParticipantID)
	if err != nil {
		return nil, s.storeError(err, "participant "+*in.ParticipantID+" in session "+*in.SessionID)
	}
	recs, e := s.recordings(ctx, stageID+"."+*in.SessionID+".")
	if e != nil {
		return nil, e
	}
	return &participantOutput{withRecording(p, recs)}, nil
}

type listParticipantsInput struct {
	sessionInput
	FilterByUserID         *string `json:"filterByUserId"`
	FilterByPublished      *bool   `json:"filterByPublished"`
	FilterByState          *string `json:"filterByState"`
	FilterByRecordingState *string `json:"filterByRecordingState"`
	listInput
}

type listParticipantsOutput struct {
	Participants []ivs.ParticipantSummary `json:"participants"`
	NextToken    string                   `json:"nextToken,omitempty"`
}

func (s *Server) listParticipants(ctx context.Context, in *listParticipantsInput) (*listParticipantsOutput, *Error) {
	var v violations
	stageID := in.validate(&v)
	p := v.page(in.NextToken, in.MaxResults, 50)
	filters := 0
	for _, set := range []bool{in.FilterByUserID != nil, in.FilterByPublished != nil, in.FilterByState != nil,
		in.FilterByRecordingState != nil} {
		if set {
			filters++
		}
	}
	if filters > 1 {
		v.addf("only one of filterByUserId, filterByPublished, filterByState and filterByRecordingState may be given")
	}
	if in.FilterByState != nil {
		v.enum("filterByState", *in.FilterByState, "CONNECTED", "DISCONNECTED")
	}
	if in.FilterByRecordingState != nil {
		v.enum("filterByRecordingState", *in.FilterByRecordingState, "STARTING", "ACTIVE", "STOPPING", "STOPPED", "FAILED")
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	recs, e := s.recordings(ctx, stageID+"."+*in.SessionID+".")
	if e != nil {
		return nil, e
	}
	keep := func(x ivs.Participant) bool {
		x = withRecording(x, recs)
		switch {
		case in.FilterByUserID != nil:
			return x.UserID == *in.FilterByUserID
		case in.FilterByPublished != nil:
			return x.Published == *in.FilterByPublished
		case in.FilterByState != nil:
			return x.State == *in.FilterByState
		case in.FilterByRecordingState != nil:
			return x.RecordingState == *in.FilterByRecordingState
		}
		return true
	}
	summary := func(x ivs.Participant) ivs.ParticipantSummary { return withRecording(x, recs).Summary() }
	items, next, e := listPage(ctx, s, s.store.Participants, stageID+"."+*in.SessionID+".", p, keep, summary)
	if e != nil {
		return nil, e
	}
	return &listParticipantsOutput{items, next}, nil
}

type listParticipantEventsInput struct {
	getParticipantInput
	listInput
}

type listParticipantEventsOutput struct {
	Events    []ivs.Event `json:"events"`
	NextToken string      `json:"nextToken,omitempty"`
}

func (s *Server) listParticipantEvents(ctx context.Context,
	in *listParticipantEventsInput) (*listParticipantEventsOutput, *Error) {
	var v violations
	stageID := in.validate(&v)
	if v.required("participantId", in.ParticipantID != nil) {
		v.participantID("participantId", *in.ParticipantID)
	}
	p := v.page(in.NextToken, in.MaxResults, 50)
	if e := v.err(); e != nil {
		return nil, e
	}
	prefix := stageID + "." + *in.SessionID + "." + *in.ParticipantID + "."
	items, next, e := listPage(ctx, s, s.store.Events, prefix, p, nil, identity[ivs.Event])
	if e != nil {
		return nil, e
	}
	return &listParticipantEventsOutput{items, next}, nil
}
