package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/stagehand-rt/stagehand/api"
)

// API runs IVS operations in process; *api.Server is one.
type API interface {
	Invoke(ctx context.Context, op string, body []byte) (json.RawMessage, *api.Error)
}

// operations are the IVS operations the page may run. Deleting resources
// other than participants' connections is left to the CLI.
var operations = map[string]bool{
	"ListStages": true, "GetStage": true, "CreateStage": true,
	"ListStageSessions": true, "GetStageSession": true,
	"ListParticipants": true, "GetParticipant": true, "ListParticipantEvents": true,
	"CreateParticipantToken": true, "DisconnectParticipant": true,
	"ListCompositions": true, "GetComposition": true, "StartComposition": true, "StopComposition": true,
	"ListEncoderConfigurations": true, "CreateEncoderConfiguration": true,
	"ListStorageConfigurations": true, "CreateStorageConfiguration": true,
}

const maxOpBody = 64 << 10

// handleOp runs POST /console/api/op/{op}.
func (c *Console) handleOp(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	if !operations[op] {
		writeError(w, http.StatusNotFound, "UnknownOperationException", op+" is not an operation the console runs")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOpBody+1))
	if err != nil || len(body) > maxOpBody {
		writeError(w, http.StatusRequestEntityTooLarge, "ValidationException", "request body unreadable or too large")
		return
	}
	out, e := c.cfg.API.Invoke(r.Context(), op, body)
	if e != nil {
		writeError(w, e.Status, e.Code, e.Message)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// invoke runs op for the console's own needs, decoding its output into out.
func (c *Console) invoke(ctx context.Context, op string, in, out any) *api.Error {
	b, err := json.Marshal(in)
	if err != nil {
		return &api.Error{Status: http.StatusInternalServerError, Code: "InternalServerException", Message: err.Error()}
	}
	raw, e := c.cfg.API.Invoke(ctx, op, b)
	if e != nil {
		return e
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &api.Error{Status: http.StatusInternalServerError, Code: "InternalServerException", Message: err.Error()}
	}
	return nil
}
