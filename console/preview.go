package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/stagehand-rt/stagehand/api"
	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/layout"
)

// previewRequest is what the layout designer sends.
type previewRequest struct {
	Layout       json.RawMessage `json:"layout"`
	Participants []struct {
		Attributes map[string]string `json:"attributes"`
		Stopped    bool              `json:"stopped"`
	} `json:"participants"`
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Preview canvases are small: the page shows them at most ~800 px wide.
const (
	maxPreviewSide         = 1920
	maxPreviewParticipants = 12
)

// handlePreview answers POST /console/api/layout/preview with a PNG drawn
// by compositor.Preview, as `stagehand layout preview` draws it; a layout
// StartComposition would refuse gets its ValidationException.
func (c *Console) handlePreview(w http.ResponseWriter, r *http.Request) {
	var in previewRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "request body is not valid JSON: "+err.Error())
		return
	}
	cfg, e := api.ValidateLayout(in.Layout)
	if e != nil {
		writeError(w, e.Status, e.Code, e.Message)
		return
	}
	if in.Width == 0 && in.Height == 0 {
		in.Width, in.Height = 640, 360
	}
	if in.Width < 2 || in.Height < 2 || in.Width > maxPreviewSide || in.Height > maxPreviewSide ||
		in.Width%2 != 0 || in.Height%2 != 0 {
		writeError(w, http.StatusBadRequest, "ValidationException",
			fmt.Sprintf("width and height must be even, 2..%d", maxPreviewSide))
		return
	}
	if len(in.Participants) > maxPreviewParticipants {
		writeError(w, http.StatusBadRequest, "ValidationException",
			fmt.Sprintf("at most %d preview participants", maxPreviewParticipants))
		return
	}
	ps := make([]compositor.PreviewParticipant, len(in.Participants))
	for i, p := range in.Participants {
		ps[i].ID = fmt.Sprintf("P%d", i+1)
		ps[i].Attributes = p.Attributes
		ps[i].VideoStopped = p.Stopped
		var kv []string
		for k, v := range p.Attributes {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		ps[i].Detail = strings.Join(kv, " ")
		if p.Stopped {
			ps[i].Detail = strings.TrimSpace(ps[i].Detail + " stopped")
		}
	}
	canvas := layout.Size{W: in.Width, H: in.Height}
	img, geometry, err := compositor.Preview(compositor.Config{Canvas: canvas, Layout: cfg}, ps)
	if err != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", err.Error())
		return
	}
	if r.URL.Query().Get("format") == "json" {
		writeJSON(w, http.StatusOK, geometryOf(geometry))
		return
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		writeError(w, http.StatusInternalServerError, "InternalServerException", err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(buf.Bytes())
}

type rect struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

type tileView struct {
	ID   string `json:"id"`
	Slot string `json:"slot"`
	Tile rect   `json:"tile"`
	Z    int    `json:"z"`
}

// geometryOf is a layout's tiles, for boxes drawn over a thumbnail.
func geometryOf(g layout.Layout) map[string]any {
	tiles := []tileView{}
	for _, t := range g.Tiles {
		tiles = append(tiles, tileView{ID: t.ID, Slot: fmt.Sprint(t.Slot), Z: t.Z,
			Tile: rect{t.Tile.X, t.Tile.Y, t.Tile.W, t.Tile.H}})
	}
	return map[string]any{"tiles": tiles}
}
