package layout

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// pipOf returns the layout's PiP tile and checks that it is the last tile,
// drawn above every other.
func pipOf(t *testing.T, l Layout) Tile {
	t.Helper()
	pips := tilesOf(l, SlotPiP)
	if len(pips) != 1 {
		t.Fatalf("%d PiP tiles in %v", len(pips), tileIDs(l.Tiles))
	}
	p := l.Tiles[len(l.Tiles)-1]
	if p.Slot != SlotPiP {
		t.Fatalf("last tile %s is %s, not the PiP", p.ID, p.Slot)
	}
	for _, o := range l.Tiles[:len(l.Tiles)-1] {
		if o.Z >= p.Z {
			t.Errorf("background %s Z %d not below PiP Z %d", o.ID, o.Z, p.Z)
		}
	}
	return p
}

func TestPipPositions(t *testing.T) {
	cases := []struct {
		pos    PipPosition
		offset *int
		want   Rect
	}{
		{"", nil, Rect{1440, 810, 480, 270}}, // BOTTOM_RIGHT, offset 0
		{PipTopLeft, ip(0), Rect{0, 0, 480, 270}},
		{PipTopRight, ip(0), Rect{1440, 0, 480, 270}},
		{PipBottomLeft, ip(0), Rect{0, 810, 480, 270}},
		{PipBottomRight, ip(0), Rect{1440, 810, 480, 270}},
		{PipTopLeft, ip(20), Rect{20, 20, 480, 270}},
		{PipTopRight, ip(20), Rect{1420, 20, 480, 270}},
		{PipBottomLeft, ip(20), Rect{20, 790, 480, 270}},
		{PipBottomRight, ip(20), Rect{1420, 790, 480, 270}},
		{PipTopLeft, ip(21), Rect{22, 22, 480, 270}}, // odd offsets round up to even
		{PipBottomRight, ip(21), Rect{1418, 788, 480, 270}},
		{PipBottomLeft, ip(810), Rect{810, 0, 480, 270}}, // the largest offset a quarter-canvas window allows
	}
	for _, c := range cases {
		off := "nil"
		if c.offset != nil {
			off = fmt.Sprint(*c.offset)
		}
		t.Run(fmt.Sprintf("%q offset %s", c.pos, off), func(t *testing.T) {
			ps := people(2, Size{1280, 720})
			l := mustCompute(t, hd, ps, Config{PiP: &PipConfig{PipPosition: c.pos, PipOffset: c.offset}})
			p := pipOf(t, l)
			if p.ID != "p1" || p.Tile != c.want || p.Z != 1 || p.Fill != FillCover {
				t.Errorf("PiP %s %v Z %d %s, want p1 %v Z 1 COVER", p.ID, p.Tile, p.Z, p.Fill, c.want)
			}
			bg := l.Tiles[0]
			if bg.ID != "p0" || bg.Slot != SlotGrid || bg.Tile != (Rect{0, 0, 1920, 1080}) || bg.Z != 0 || bg.Fill != FillCover {
				t.Errorf("background %+v", bg)
			}
		})
	}
}

func TestPipSize(t *testing.T) {
	cases := []struct {
		name          string
		canvas        Size
		video         Size // the PiP participant's
		width, height *int
		offset        *int
		want          Rect // at BOTTOM_RIGHT
	}{
		{"explicit", hd, Size{1280, 720}, ip(640), ip(360), nil, Rect{1280, 720, 640, 360}},
		{"explicit ignores the aspect", hd, Size{720, 1280}, ip(640), ip(360), nil, Rect{1280, 720, 640, 360}},
		{"explicit odd rounds up", hd, Size{1280, 720}, ip(641), ip(361), nil, Rect{1278, 718, 642, 362}},
		{"explicit whole canvas", hd, Size{1280, 720}, ip(1920), ip(1080), nil, Rect{0, 0, 1920, 1080}},
		{"explicit with offset", hd, Size{1280, 720}, ip(1900), ip(1060), ip(20), Rect{0, 0, 1900, 1060}},
		{"width only, 4:3", hd, Size{640, 480}, ip(640), nil, nil, Rect{1280, 600, 640, 480}},
		{"width only, 16:9", hd, Size{1280, 720}, ip(640), nil, nil, Rect{1280, 720, 640, 360}},
		{"width only, unknown is 16:9", hd, Size{}, ip(640), nil, nil, Rect{1280, 720, 640, 360}},
		{"width only, clamped", hd, Size{1280, 720}, ip(1900), nil, ip(20), Rect{0, 0, 1900, 1060}},
		{"height only, 4:3", hd, Size{640, 480}, nil, ip(360), nil, Rect{1440, 720, 480, 360}},
		{"height only, 9:16", hd, Size{720, 1280}, nil, ip(640), nil, Rect{1560, 440, 360, 640}},
		{"height only, clamped", hd, Size{3840, 720}, nil, ip(540), nil, Rect{0, 540, 1920, 540}},
		{"height only, clamped with offset", hd, Size{3840, 720}, nil, ip(540), ip(20), Rect{0, 520, 1900, 540}},
		{"neither, 16:9", hd, Size{1280, 720}, nil, nil, nil, Rect{1440, 810, 480, 270}},
		{"neither, unknown is 16:9", hd, Size{}, nil, nil, nil, Rect{1440, 810, 480, 270}},
		{"neither, 4:3", hd, Size{640, 480}, nil, nil, nil, Rect{1560, 810, 360, 270}},
		{"neither, 1:1", hd, Size{500, 500}, nil, nil, nil, Rect{1650, 810, 270, 270}},
		{"neither, 9:16", hd, Size{720, 1280}, nil, nil, nil, Rect{1768, 810, 152, 270}},
		{"neither, 32:6", hd, Size{3840, 720}, nil, nil, nil, Rect{1440, 990, 480, 90}},
		{"neither, 720p canvas", hd720, Size{1280, 720}, nil, nil, nil, Rect{960, 540, 320, 180}},
		{"neither, portrait canvas", tall, Size{1280, 720}, nil, nil, nil, Rect{540, 1178, 180, 102}},
		{"neither, portrait canvas, 9:16", tall, Size{720, 1280}, nil, nil, nil, Rect{540, 960, 180, 320}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := people(2, Size{1280, 720})
			ps[1].Video = c.video
			cfg := Config{PiP: &PipConfig{PipWidth: c.width, PipHeight: c.height, PipOffset: c.offset}}
			p := pipOf(t, mustCompute(t, c.canvas, ps, cfg))
			if p.ID != "p1" || p.Tile != c.want {
				t.Errorf("PiP %s %v, want p1 %v", p.ID, p.Tile, c.want)
			}
		})
	}
	t.Run("COVER crops the source to the window", func(t *testing.T) {
		ps := people(2, Size{1280, 720})
		p := pipOf(t, mustCompute(t, hd, ps, Config{PiP: &PipConfig{PipWidth: ip(400), PipHeight: ip(400)}}))
		if p.Crop != (Rect{280, 0, 720, 720}) || p.Video != p.Tile {
			t.Errorf("Crop %v Video %v (Tile %v)", p.Crop, p.Video, p.Tile)
		}
	})
	t.Run("CONTAIN letterboxes inside the window", func(t *testing.T) {
		ps := people(2, Size{1280, 720})
		p := pipOf(t, mustCompute(t, hd, ps, Config{PiP: &PipConfig{PipWidth: ip(400), PipHeight: ip(400), VideoFillMode: FillContain}}))
		if p.Tile != (Rect{1520, 680, 400, 400}) || p.Video != (Rect{1520, 766, 400, 226}) || p.Crop != (Rect{0, 0, 1280, 720}) {
			t.Errorf("Tile %v Video %v Crop %v", p.Tile, p.Video, p.Crop)
		}
	})
}

func TestPipSelection(t *testing.T) {
	cases := []struct {
		name    string
		n       int
		attrs   map[int]map[string]string
		cfg     PipConfig
		wantPip string // "" for none
		wantBg  []string
		dropped []string
	}{
		{"one participant is background", 1, nil, PipConfig{}, "", []string{"p0"}, nil},
		{"two: the last is PiP", 2, nil, PipConfig{}, "p1", []string{"p0"}, nil},
		{"five: the last is PiP", 5, nil, PipConfig{}, "p4", []string{"p0", "p1", "p2", "p3"}, nil},
		{"attribute picks", 3, map[int]map[string]string{0: {"pip": "true"}}, PipConfig{PipParticipantAttribute: "pip"}, "p0", []string{"p1", "p2"}, nil},
		{"attribute picks a lone participant", 1, map[int]map[string]string{0: {"pip": "true"}}, PipConfig{PipParticipantAttribute: "pip"}, "p0", nil, nil},
		{"first in order of several", 3, map[int]map[string]string{0: {"pip": "true", "o": "2"}, 2: {"pip": "true", "o": "1"}},
			PipConfig{PipParticipantAttribute: "pip", ParticipantOrderAttribute: "o"}, "p2", []string{"p0", "p1"}, nil},
		{"only \"true\" counts", 3, map[int]map[string]string{0: {"pip": "TRUE"}, 1: {"pip": "1"}}, PipConfig{PipParticipantAttribute: "pip"}, "p2", []string{"p0", "p1"}, nil},
		{"no match: last in order", 3, map[int]map[string]string{0: {"o": "9"}, 1: {"o": "1"}, 2: {"o": "5"}},
			PipConfig{PipParticipantAttribute: "pip", ParticipantOrderAttribute: "o"}, "p0", []string{"p1", "p2"}, nil},
		{"attribute ignored when not configured", 3, map[int]map[string]string{0: {"pip": "true"}}, PipConfig{}, "p2", []string{"p0", "p1"}, nil},
		{"13: twelve placed, the twelfth is PiP", 13, nil, PipConfig{}, "p11",
			[]string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10"}, []string{"p12"}},
		{"13: a dropped participant cannot be PiP", 13, map[int]map[string]string{12: {"pip": "true"}}, PipConfig{PipParticipantAttribute: "pip"}, "p11",
			[]string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10"}, []string{"p12"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := people(c.n, Size{1280, 720})
			for i, a := range c.attrs {
				for k, v := range a {
					ps[i].Attributes[k] = v
				}
			}
			cfg := c.cfg
			l := mustCompute(t, hd, ps, Config{PiP: &cfg})
			var bg []string
			for _, tl := range l.Tiles {
				if tl.Slot != SlotPiP {
					bg = append(bg, tl.ID)
				}
			}
			if !reflect.DeepEqual(bg, c.wantBg) {
				t.Errorf("background %v, want %v", bg, c.wantBg)
			}
			if c.wantPip == "" {
				if len(tilesOf(l, SlotPiP)) != 0 {
					t.Errorf("unexpected PiP %v", tileIDs(tilesOf(l, SlotPiP)))
				}
			} else if p := pipOf(t, l); p.ID != c.wantPip {
				t.Errorf("PiP %s, want %s", p.ID, c.wantPip)
			}
			if !reflect.DeepEqual(l.Dropped, c.dropped) {
				t.Errorf("Dropped %v, want %v", l.Dropped, c.dropped)
			}
		})
	}
}

func TestPipBackground(t *testing.T) {
	t.Run("grid with gap 0 by default", func(t *testing.T) {
		l := mustCompute(t, hd, people(4, Size{1280, 720}), Config{PiP: &PipConfig{}})
		if l.Gap != 0 {
			t.Errorf("Gap %d, want 0", l.Gap)
		}
		want := []Rect{{0, 0, 960, 540}, {960, 0, 960, 540}, {480, 540, 960, 540}}
		for i, tl := range l.Tiles[:3] {
			if tl.Tile != want[i] || tl.Slot != SlotGrid || tl.Fill != FillCover {
				t.Errorf("background %d: %v %s %s, want %v grid COVER", i, tl.Tile, tl.Slot, tl.Fill, want[i])
			}
		}
		if p := pipOf(t, l); p.ID != "p3" || p.Tile != (Rect{1440, 810, 480, 270}) {
			t.Errorf("PiP %s %v", p.ID, p.Tile)
		}
	})
	t.Run("explicit gap", func(t *testing.T) {
		l := mustCompute(t, hd, people(4, Size{1280, 720}), Config{PiP: &PipConfig{GridGap: ip(3)}})
		if l.Gap != 4 {
			t.Errorf("Gap %d, want 4", l.Gap)
		}
		gridShape(t, l.Tiles[:3], Rect{0, 0, 1920, 1080}, 4)
	})
	t.Run("AUTO shapes for portrait videos", func(t *testing.T) {
		l := mustCompute(t, hd, people(4, Size{720, 1280}), Config{PiP: &PipConfig{}})
		cols, rows, w, h := gridShape(t, l.Tiles[:3], Rect{0, 0, 1920, 1080}, 0)
		if cols != 3 || rows != 1 || w != 640 || h != 1080 {
			t.Errorf("%d x %d of %dx%d, want 3 x 1 of 640x1080", cols, rows, w, h)
		}
		if p := pipOf(t, l); p.Tile != (Rect{1768, 810, 152, 270}) {
			t.Errorf("PiP %v", p.Tile)
		}
	})
	t.Run("featured in the background", func(t *testing.T) {
		ps := people(3, Size{1280, 720})
		ps[0].Attributes["featured"] = "true"
		l := mustCompute(t, hd, ps, Config{PiP: &PipConfig{FeaturedParticipantAttribute: "featured"}})
		f := tilesOf(l, SlotFeatured)
		if len(f) != 1 || f[0].ID != "p0" || f[0].Tile != (Rect{0, 0, 1280, 1080}) || f[0].Fill != FillCover {
			t.Errorf("featured %+v, want p0 at 0,0 1280x1080 COVER", f)
		}
		g := tilesOf(l, SlotGrid)
		if len(g) != 1 || g[0].ID != "p1" || g[0].Tile != (Rect{1280, 0, 640, 1080}) {
			t.Errorf("grid %+v, want p1 at 1280,0 640x1080", g)
		}
		if p := pipOf(t, l); p.ID != "p2" || p.Tile != (Rect{1440, 810, 480, 270}) {
			t.Errorf("PiP %s %v", p.ID, p.Tile)
		}
	})
	t.Run("featured PiP participant stays PiP", func(t *testing.T) {
		ps := people(3, Size{1280, 720})
		ps[0].Attributes["featured"], ps[0].Attributes["pip"] = "true", "true"
		l := mustCompute(t, hd, ps, Config{PiP: &PipConfig{FeaturedParticipantAttribute: "featured", PipParticipantAttribute: "pip"}})
		if p := pipOf(t, l); p.ID != "p0" || len(tilesOf(l, SlotFeatured)) != 0 {
			t.Errorf("PiP %s, featured %v", p.ID, tileIDs(tilesOf(l, SlotFeatured)))
		}
	})
	t.Run("fill mode applies everywhere", func(t *testing.T) {
		for _, m := range []FillMode{FillFill, FillContain, FillCover} {
			ps := people(3, Size{640, 480})
			ps[0].Attributes["featured"] = "true"
			l := mustCompute(t, hd, ps, Config{PiP: &PipConfig{FeaturedParticipantAttribute: "featured", VideoFillMode: m}})
			for _, tl := range l.Tiles {
				if tl.Fill != m {
					t.Errorf("%s: %s (%s), want %s", m, tl.Fill, tl.Slot, m)
				}
			}
		}
	})
	t.Run("omitted stopped participants", func(t *testing.T) {
		ps := people(4, Size{1280, 720})
		ps[3].VideoStopped = true
		l := mustCompute(t, hd, ps, Config{PiP: &PipConfig{OmitStoppedVideo: true}})
		if p := pipOf(t, l); p.ID != "p2" || !reflect.DeepEqual(l.Omitted, []string{"p3"}) {
			t.Errorf("PiP %s, omitted %v", p.ID, l.Omitted)
		}
	})
	t.Run("stopped PiP keeps a placeholder window", func(t *testing.T) {
		ps := people(2, Size{1280, 720})
		ps[1].VideoStopped = true
		p := pipOf(t, mustCompute(t, hd, ps, Config{PiP: &PipConfig{}}))
		if !p.Placeholder || p.Crop != (Rect{}) || p.Tile != (Rect{1440, 810, 480, 270}) {
			t.Errorf("PiP %+v", p)
		}
	})
}

func TestPipBehavior(t *testing.T) {
	full := Rect{0, 0, 1920, 1080}
	corner := Rect{1440, 810, 480, 270}
	cases := []struct {
		name     string
		behavior PipBehavior
		n        int
		stopped  []int // omitted
		want     Rect
	}{
		{"STATIC alone stays in its window", PipStatic, 1, nil, corner},
		{"default is STATIC", "", 1, nil, corner},
		{"DYNAMIC alone fills the canvas", PipDynamic, 1, nil, full},
		{"DYNAMIC with a background stays in its window", PipDynamic, 2, nil, corner},
		{"DYNAMIC fills once the background is omitted", PipDynamic, 3, []int{0, 2}, full},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := people(c.n, Size{1280, 720})
			ps[c.n-1].Attributes["pip"] = "true"
			if c.n == 3 {
				ps[1].Attributes["pip"] = "true"
			}
			for _, i := range c.stopped {
				ps[i].VideoStopped = true
			}
			l := mustCompute(t, hd, ps, Config{PiP: &PipConfig{PipBehavior: c.behavior, PipParticipantAttribute: "pip", OmitStoppedVideo: true}})
			p := pipOf(t, l)
			if p.Tile != c.want || p.Video != c.want {
				t.Errorf("PiP %s Tile %v Video %v, want %v", p.ID, p.Tile, p.Video, c.want)
			}
		})
	}
	t.Run("DYNAMIC without a PiP participant", func(t *testing.T) {
		l := mustCompute(t, hd, people(1, Size{1280, 720}), Config{PiP: &PipConfig{PipBehavior: PipDynamic}})
		if len(l.Tiles) != 1 || l.Tiles[0].Slot != SlotGrid || l.Tiles[0].Tile != full {
			t.Errorf("tiles %+v", l.Tiles)
		}
	})
	t.Run("no participants", func(t *testing.T) {
		l := mustCompute(t, hd, nil, Config{PiP: &PipConfig{PipBehavior: PipDynamic}})
		if len(l.Tiles) != 0 {
			t.Errorf("tiles %+v", l.Tiles)
		}
	})
}

// TestPipWindowCheckedUpFront: a PiP configuration accepted for an empty
// stage is accepted whoever joins. The derived window can be up to a quarter
// of the canvas in each dimension, so the offset must leave that much room.
func TestPipWindowCheckedUpFront(t *testing.T) {
	canvas := Size{1440, 1080} // 4:3: a 16:9 window is narrower than the quarter's height allows
	videos := []Size{{}, {1280, 720}, {640, 480}, {720, 1280}, {1000, 1000}, {3840, 720}}
	for _, c := range []struct {
		offset int
		ok     bool
	}{{0, true}, {20, true}, {810, true}, {811, false}, {812, false}, {820, false}, {878, false}} {
		t.Run(fmt.Sprint("offset ", c.offset), func(t *testing.T) {
			cfg := Config{PiP: &PipConfig{PipOffset: ip(c.offset), PipPosition: PipTopLeft}}
			_, err := Compute(canvas, nil, cfg)
			if c.ok != (err == nil) {
				t.Fatalf("empty stage: err %v, want ok %v", err, c.ok)
			}
			for _, v := range videos {
				ps := people(2, Size{1280, 720})
				ps[1].Video = v
				_, err := Compute(canvas, ps, cfg)
				if c.ok != (err == nil) {
					t.Errorf("PiP video %v: err %v, want ok %v", v, err, c.ok)
				}
				if err != nil {
					var ve *ValidationError
					if !errors.As(err, &ve) || ve.Field != "layout.pip" {
						t.Errorf("err %v, want a layout.pip ValidationError", err)
					}
				} else {
					checkPipWindow(t, canvas, cfg, mustCompute(t, canvas, ps, cfg))
				}
			}
		})
	}
}
