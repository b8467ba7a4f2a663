package api

import (
	"context"

	"github.com/stagehand-rt/stagehand/ivs"
)

// recordings reads the individual recordings of a session (key prefix
// "<stage id>.<session id>."), by participant id.
func (s *Server) recordings(ctx context.Context, prefix string) (map[string]ivs.ParticipantRecording, *Error) {
	items, _, err := s.store.Recordings.Page(ctx, prefix, "", -1, nil)
	if err != nil {
		return nil, s.storeError(err, "participant recordings")
	}
	out := make(map[string]ivs.ParticipantRecording, len(items))
	for _, it := range items {
		r := it.Value
		if r.Ref != "" { // continued from an earlier session
			if r, err = s.store.Recordings.Get(ctx, r.Ref); err != nil {
				return nil, s.storeError(err, "participant recordings")
			}
		}
		out[it.Value.ParticipantID] = r
	}
	return out, nil
}

// withRecording shows p's individual recording, which the worker keeps
// beside the stage's participant record: bucket, prefix and state (after
// a reconnect within the window, the prefix is the continued recording's).
func withRecording(p ivs.Participant, recs map[string]ivs.ParticipantRecording) ivs.Participant {
	if r, ok := recs[p.ParticipantID]; ok {
		p.RecordingS3BucketName, p.RecordingS3Prefix, p.RecordingState = r.BucketName, r.Prefix, r.State
	}
	return p
}
