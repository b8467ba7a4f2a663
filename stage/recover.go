package stage

import (
	"context"
	"fmt"
)

// EndStaleSessions ends the sessions that a stage server left open when it
// died (an earlier run of this one, or in a cluster a node whose stages
// nobody came back to): their connected participants are recorded as
// having left, and the stages become idle. Call it before serving; a
// cluster node also runs it every 30 s, and leaves alone the stages a node
// hosts. It returns how many sessions it ended.
func (s *Server) EndStaleSessions(ctx context.Context) (int, error) {
	ids, err := s.store.Stages.Keys(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("stage: list stages: %w", err)
	}
	ended := 0
	for _, id := range ids {
		st, err := s.store.Stages.Get(ctx, id)
		if err != nil || st.ActiveSessionID == "" {
			continue
		}
		if s.roomOf(id) != nil || s.leased(ctx, id) {
			continue
		}
		if err := s.endStale(ctx, id, st.ARN, st.ActiveSessionID); err != nil {
			return ended, err
		}
		ended++
	}
	return ended, nil
}

// leased reports whether a node of the cluster hosts the stage (its
// session is that node's to end).
func (s *Server) leased(ctx context.Context, stageID string) bool {
	if s.cluster == nil {
		return false
	}
	_, err := s.cluster.leases.Get(ctx, stageID)
	return err == nil
}

// endStaleSession ends the session of a stage this node just took over,
// which the node that hosted it left open.
func (s *Server) endStaleSession(ctx context.Context, stageID string) error {
	st, err := s.store.Stages.Get(ctx, stageID)
	if err != nil || st.ActiveSessionID == "" {
		return nil
	}
	return s.endStale(ctx, stageID, st.ARN, st.ActiveSessionID)
}

func (s *Server) endStale(ctx context.Context, stageID, stageARN, sessionID string) error {
	r := newRoom(s, stageID, stageARN)
	r.sessionID = sessionID
	keys, err := s.store.Participants.Keys(ctx, stageID+"."+sessionID+".")
	if err != nil {
		return fmt.Errorf("stage: participants of stale session %s: %w", sessionID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		rec, err := s.store.Participants.Get(ctx, k)
		if err != nil || rec.State != "CONNECTED" {
			continue
		}
		rec.State = "DISCONNECTED"
		r.saveParticipant(&participant{rec: rec})
		r.recordLocked(rec.ParticipantID, "LEFT", "", "")
	}
	r.endSession()
	r.log.Warn("ended a session left open by an earlier run", "session", sessionID, "participants", len(keys))
	return nil
}
