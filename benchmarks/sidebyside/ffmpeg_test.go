package main

import (
	"strings"
	"testing"
)

// TestFilterGraph checks that the FFmpeg CLI is asked to draw Stagehand's
// own rectangles: the 4-up grid's 956x538 tiles at its gap.
func TestFilterGraph(t *testing.T) {
	ts, err := tiles(4)
	if err != nil {
		t.Fatal(err)
	}
	g := filterGraph(ts, stagehandScaler)
	for _, want := range []string{
		"[0:v]scale=956:538:flags=area[v0];",
		"xstack=inputs=4:layout=2_0|960_0|2_540|960_540:fill=black,pad=1920:1080:0:0:black,setsar=1[v];",
		"[0:a][1:a][2:a][3:a]amix=inputs=4[a]",
	} {
		if !strings.Contains(g, want) {
			t.Errorf("filter graph %q lacks %q", g, want)
		}
	}
	if g := filterGraph(ts[:1], ""); !strings.Contains(g, "scale=956:538[v0];[v0]pad=1920:1080:2:0:black") {
		t.Errorf("one tile: %q", g)
	}
}
