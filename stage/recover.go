package stage

import (
	"context"
	"fmt"
)

// EndStaleSessions ends the sessions that a previous run of this stage
// server left open when it died: their connected participants are recorded
// as having left, and the stages become idle. Call it before serving, and
// only on a stage server that hosts every stage (as `stagehand serve`
// does); it returns how many sessions it ended.
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
		s.mu.Lock()
		_, live := s.rooms[id]
		s.mu.Unlock()
		if live {
			continue
		}
		if err := s.endStale(ctx, id, st.ARN, st.ActiveSessionID); err != nil {
			return ended, err
		}
		ended++
	}
	return ended, nil
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
