package worker

import (
	"testing"

	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/stage"
)

func TestNeededHeight(t *testing.T) {
	hd := layout.Size{W: 1280, H: 720}
	for _, tc := range []struct {
		name  string
		video layout.Rect
		crop  layout.Rect
		src   layout.Size
		want  int
	}{
		{"9-up 1080p tile, whole picture", layout.Rect{W: 636, H: 358}, layout.Rect{W: 1280, H: 720}, hd, 358},
		{"4-up 1080p tile", layout.Rect{W: 956, H: 538}, layout.Rect{W: 1280, H: 720}, hd, 538},
		{"full canvas", layout.Rect{W: 1920, H: 1080}, layout.Rect{W: 1280, H: 720}, hd, 1080},
		// A square tile covered by a 16:9 picture shows its middle 720x720:
		// the picture must be 400/720 of its height.
		{"square COVER tile", layout.Rect{W: 400, H: 400}, layout.Rect{X: 280, W: 720, H: 720}, hd, 400},
		// A tall tile's crop is narrow: width decides.
		{"portrait COVER tile", layout.Rect{W: 300, H: 400}, layout.Rect{X: 370, W: 540, H: 720}, hd, 400},
		{"unknown crop: the top", layout.Rect{W: 300, H: 200}, layout.Rect{}, hd, 720},
	} {
		got := neededHeight(layout.Tile{Video: tc.video, Crop: tc.crop}, tc.src)
		if got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestLayerPlan(t *testing.T) {
	sim := []stage.TrackInfo{{TrackID: "video", Kind: "video", Layers: []stage.LayerInfo{
		{Name: "low", Width: 320, Height: 180}, {Name: "medium", Width: 640, Height: 360},
		{Name: "high", Width: 1280, Height: 720}}}}
	plain := []stage.TrackInfo{{TrackID: "video", Kind: "video"}}
	ps := func(n int, tracks []stage.TrackInfo) []stage.ParticipantInfo {
		var out []stage.ParticipantInfo
		for i := range n {
			out = append(out, stage.ParticipantInfo{ParticipantID: string(rune('a' + i)), Tracks: tracks})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ps   []stage.ParticipantInfo
		want map[string]string
	}{
		{"alone: the whole 1080p canvas", ps(1, sim), map[string]string{"a": "1080p"}},
		{"4-up", ps(4, sim), map[string]string{"a": "538p", "b": "538p", "c": "538p", "d": "538p"}},
		{"9-up", ps(9, sim), map[string]string{"a": "358p", "e": "358p", "i": "358p"}},
		{"no simulcast: no request", ps(2, plain), map[string]string{"a": "", "b": ""}},
	} {
		lp := newLayerPlan(layout.Size{W: 1920, H: 1080}, layout.Config{})
		lp.update(tc.ps)
		for id, want := range tc.want {
			if got := lp.layer(id); got != want {
				t.Errorf("%s: participant %s asks for %q, want %q", tc.name, id, got, want)
			}
		}
	}
}
