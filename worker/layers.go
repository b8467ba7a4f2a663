// Layer-aware composition: a simulcast publisher is received in the
// smallest layer that covers its tile at the canvas's size, and switched
// (on the stage, at the new layer's keyframe) when the layout changes.
// Decoding a 640x360 layer for a 9-up 1080p tile instead of 720p is most
// of what a composite costs above the encoder.

package worker

import (
	"fmt"
	"sync"

	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/stage"
)

// assumedSource is the picture size taken for a layer the stage has not
// measured yet (its keyframes tell it): 16:9, as cameras and the synth send.
var assumedSource = layout.Size{W: 1280, H: 720}

// layerPlan is the layer each participant is received in, from the layout
// of the participants the stage lists.
type layerPlan struct {
	canvas layout.Size
	cfg    layout.Config

	mu   sync.Mutex
	want map[string]string // participant → layer request ("360p")
}

func newLayerPlan(canvas layout.Size, cfg layout.Config) *layerPlan {
	return &layerPlan{canvas: canvas, cfg: cfg, want: map[string]string{}}
}

// update lays ps out on the canvas and chooses each simulcast
// participant's layer: the smallest at least as high as its tile needs
// (the stage picks it among the layers' measured sizes, and again once it
// has measured them).
func (lp *layerPlan) update(ps []stage.ParticipantInfo) {
	lps := layoutParticipants(ps)
	simulcast := map[string]bool{}
	for i, p := range ps {
		layers := videoLayers(p)
		if len(layers) == 0 {
			continue
		}
		simulcast[p.ParticipantID] = true
		lps[i].Video = assumedSource
		if top := layers[len(layers)-1]; top.Width > 0 && top.Height > 0 {
			lps[i].Video = layout.Size{W: top.Width, H: top.Height}
		}
	}
	want := map[string]string{}
	if l, err := layout.Compute(lp.canvas, lps, lp.cfg); err == nil {
		for _, t := range l.Tiles {
			if simulcast[t.ID] && !t.Placeholder {
				want[t.ID] = fmt.Sprintf("%dp", neededHeight(t, lps[t.Participant].Video))
			}
		}
	}
	lp.mu.Lock()
	lp.want = want
	lp.mu.Unlock()
}

// layer is the layer to receive participant id in; "" for a publisher
// without layers (or not laid out): the default, the highest.
func (lp *layerPlan) layer(id string) string {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.want[id]
}

func videoLayers(p stage.ParticipantInfo) []stage.LayerInfo {
	for _, t := range p.Tracks {
		if t.Kind == "video" {
			return t.Layers
		}
	}
	return nil
}

// neededHeight is the height a layer of a src-sized picture's shape needs
// for tile t to be drawn from it without an upscale: the part the tile
// shows (its COVER crop, or all of it) at least the size it is drawn at.
func neededHeight(t layout.Tile, src layout.Size) int {
	if t.Crop.Empty() || t.Video.Empty() {
		return src.H
	}
	// Scale factor from the crop to the drawn picture, on the axis that
	// needs more; the layer must be that much of src's height.
	num, den := t.Video.W, t.Crop.W
	if t.Video.H*t.Crop.W > t.Video.W*t.Crop.H {
		num, den = t.Video.H, t.Crop.H
	}
	return (src.H*num + den - 1) / den
}
