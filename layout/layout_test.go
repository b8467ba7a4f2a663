package layout

import (
	"fmt"
	"math"
	"reflect"
	"testing"
)

// Test helpers shared by the package's tests.

func ip(v int) *int { return &v }

var (
	hd    = Size{1920, 1080}
	hd720 = Size{1280, 720}
	tall  = Size{720, 1280} // a portrait canvas
)

// people returns n participants p0..p(n-1) with the given video size.
func people(n int, video Size) []Participant {
	ps := make([]Participant, n)
	for i := range ps {
		ps[i] = Participant{ID: fmt.Sprint("p", i), Attributes: map[string]string{}, Video: video}
	}
	return ps
}

// mustCompute computes a layout that must be accepted and checks the
// invariants every accepted layout honours.
func mustCompute(t *testing.T, canvas Size, ps []Participant, cfg Config) Layout {
	t.Helper()
	l, err := Compute(canvas, ps, cfg)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	checkInvariants(t, canvas, ps, cfg, l)
	checkPipWindow(t, canvas, cfg, l)
	return l
}

func tileIDs(ts []Tile) []string {
	ids := []string{}
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

func tilesOf(l Layout, slot Slot) []Tile {
	var ts []Tile
	for _, t := range l.Tiles {
		if t.Slot == slot {
			ts = append(ts, t)
		}
	}
	return ts
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// gridShape checks that tiles (in placement order) form a grid block inside
// region: equal sizes, row-major rows of cols tiles, exactly gap pixels
// between horizontal and vertical neighbours, the block centred vertically
// and every row, the last one included, centred horizontally (to within the
// 2 pixels that even coordinates allow). It returns the column and row
// counts and the tile size.
func gridShape(t *testing.T, tiles []Tile, region Rect, gap int) (cols, rows, w, h int) {
	t.Helper()
	if len(tiles) == 0 {
		return 0, 0, 0, 0
	}
	w, h = tiles[0].Tile.W, tiles[0].Tile.H
	for cols < len(tiles) && tiles[cols].Tile.Y == tiles[0].Tile.Y {
		cols++
	}
	rows = (len(tiles) + cols - 1) / cols
	for i, tl := range tiles {
		r, c := i/cols, i%cols
		if tl.Tile.W != w || tl.Tile.H != h {
			t.Errorf("tile %d (%s) is %dx%d, tile 0 is %dx%d", i, tl.ID, tl.Tile.W, tl.Tile.H, w, h)
		}
		if !region.Contains(tl.Tile) {
			t.Errorf("tile %d (%s) %v outside region %v", i, tl.ID, tl.Tile, region)
		}
		first := tiles[r*cols].Tile
		if tl.Tile.Y != first.Y {
			t.Errorf("tile %d (%s) at y %d, its row starts at y %d", i, tl.ID, tl.Tile.Y, first.Y)
		}
		if c > 0 {
			if g := tl.Tile.X - (tiles[i-1].Tile.X + w); g != gap {
				t.Errorf("horizontal gap before tile %d (%s) is %d, want %d", i, tl.ID, g, gap)
			}
		}
		if r > 0 && c == 0 {
			if g := tl.Tile.Y - (tiles[i-cols].Tile.Y + h); g != gap {
				t.Errorf("vertical gap above row %d is %d, want %d", r, g, gap)
			}
		}
		last := i == len(tiles)-1 || c == cols-1
		if last {
			left := first.X - region.X
			right := region.X + region.W - (tl.Tile.X + w)
			if abs(left-right) > 2 {
				t.Errorf("row %d not centred: %d px left, %d px right", r, left, right)
			}
		}
	}
	top := tiles[0].Tile.Y - region.Y
	bottom := region.Y + region.H - (tiles[len(tiles)-1].Tile.Y + h)
	if abs(top-bottom) > 2 {
		t.Errorf("block not centred: %d px above, %d px below", top, bottom)
	}
	return cols, rows, w, h
}

// aspectWithin reports whether a w x h tile has aspect ratio num:den up to
// the rounding of one dimension to an even number.
func aspectWithin(w, h, num, den int) bool {
	return abs(w*den-h*num) <= 2*max(num, den)
}

func TestEffectiveGap(t *testing.T) {
	for _, c := range []struct{ in, want int }{
		{0, 0}, {1, 2}, {2, 2}, {3, 4}, {10, 10}, {11, 12},
		{math.MaxInt - 1, math.MaxInt - 1}, {math.MaxInt, math.MaxInt - 1},
	} {
		t.Run(fmt.Sprint(c.in), func(t *testing.T) {
			if got := EffectiveGap(c.in); got != c.want {
				t.Errorf("EffectiveGap(%d) = %d, want %d", c.in, got, c.want)
			}
		})
	}
}

func TestRect(t *testing.T) {
	a := Rect{0, 0, 10, 10}
	for _, c := range []struct {
		name                 string
		o                    Rect
		intersects, contains bool
	}{
		{"same", a, true, true},
		{"inside", Rect{2, 2, 4, 4}, true, true},
		{"overlapping", Rect{8, 8, 4, 4}, true, false},
		{"touching right edge", Rect{10, 0, 4, 4}, false, false},
		{"touching bottom edge", Rect{0, 10, 4, 4}, false, false},
		{"far", Rect{100, 100, 4, 4}, false, false},
		{"empty inside", Rect{2, 2, 0, 0}, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := a.Intersects(c.o); got != c.intersects {
				t.Errorf("Intersects(%v) = %v", c.o, got)
			}
			if got := c.o.Intersects(a); got != c.intersects {
				t.Errorf("%v.Intersects = %v", c.o, got)
			}
			if got := a.Contains(c.o); got != c.contains {
				t.Errorf("Contains(%v) = %v", c.o, got)
			}
		})
	}
	if !(Rect{0, 0, 0, 5}).Empty() || !(Rect{0, 0, 5, -1}).Empty() || a.Empty() {
		t.Error("Empty is wrong")
	}
	for s, want := range map[Slot]string{SlotGrid: "grid", SlotFeatured: "featured", SlotPiP: "pip"} {
		if s.String() != want {
			t.Errorf("Slot(%d).String() = %q, want %q", int(s), s.String(), want)
		}
	}
}

// TestGridCounts checks the default grid (VIDEO 16:9, gap 2) for every
// participant count on landscape and portrait canvases: the column and row
// counts that maximise the tile area, the exact tile size, the 2-pixel gap
// between neighbours and the centring of the block and of its last row.
func TestGridCounts(t *testing.T) {
	cases := []struct {
		canvas           Size
		n                int
		cols, rows, w, h int
	}{
		{hd, 0, 0, 0, 0, 0},
		{hd, 1, 1, 1, 1920, 1080},
		{hd, 2, 2, 1, 958, 538},
		{hd, 3, 2, 2, 956, 538},
		{hd, 4, 2, 2, 956, 538},
		{hd, 5, 3, 2, 638, 358},
		{hd, 6, 3, 2, 638, 358},
		{hd, 7, 3, 3, 636, 358},
		{hd, 8, 3, 3, 636, 358},
		{hd, 9, 3, 3, 636, 358},
		{hd, 10, 4, 3, 478, 268},
		{hd, 11, 4, 3, 478, 268},
		{hd, 12, 4, 3, 478, 268},
		{hd720, 1, 1, 1, 1280, 720},
		{hd720, 2, 2, 1, 638, 358},
		{hd720, 3, 2, 2, 636, 358},
		{hd720, 5, 3, 2, 424, 238},
		{hd720, 7, 3, 3, 422, 238},
		{hd720, 12, 4, 3, 318, 178},
		{tall, 1, 1, 1, 720, 406},
		{tall, 2, 1, 2, 720, 406},
		{tall, 3, 1, 3, 720, 406},
		{tall, 4, 1, 4, 564, 318},
		{tall, 5, 1, 5, 450, 254},
		{tall, 6, 1, 6, 372, 210},
		{tall, 7, 2, 4, 358, 202},
		{tall, 9, 2, 5, 358, 202},
		{tall, 12, 2, 6, 358, 202},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d/%d", c.canvas.W, c.canvas.H, c.n), func(t *testing.T) {
			ps := people(c.n, Size{1280, 720})
			l := mustCompute(t, c.canvas, ps, Config{})
			if len(l.Tiles) != c.n || l.Gap != 2 || len(l.Dropped) != 0 || len(l.Omitted) != 0 {
				t.Fatalf("%d tiles, gap %d, dropped %v, omitted %v", len(l.Tiles), l.Gap, l.Dropped, l.Omitted)
			}
			for i, tl := range l.Tiles {
				if tl.ID != ps[i].ID || tl.Participant != i || tl.Slot != SlotGrid || tl.Fill != FillCover || tl.Z != 0 {
					t.Errorf("tile %d: %+v", i, tl)
				}
			}
			cols, rows, w, h := gridShape(t, l.Tiles, Rect{0, 0, c.canvas.W, c.canvas.H}, 2)
			if cols != c.cols || rows != c.rows || w != c.w || h != c.h {
				t.Errorf("%d cols x %d rows of %dx%d, want %d x %d of %dx%d", cols, rows, w, h, c.cols, c.rows, c.w, c.h)
			}
			if c.n > 0 && !aspectWithin(w, h, 16, 9) {
				t.Errorf("tile %dx%d is not 16:9", w, h)
			}
		})
	}
}

// TestGridExactPositions pins a few layouts down to the pixel, incomplete
// last rows included.
func TestGridExactPositions(t *testing.T) {
	cases := []struct {
		name   string
		canvas Size
		n      int
		want   []Rect
	}{
		{"1 fills", hd, 1, []Rect{{0, 0, 1920, 1080}}},
		{"2 side by side", hd, 2, []Rect{{0, 270, 958, 538}, {960, 270, 958, 538}}},
		{"3 with centred last row", hd, 3, []Rect{{2, 0, 956, 538}, {960, 0, 956, 538}, {482, 540, 956, 538}}},
		{"5 with centred last row", hd, 5, []Rect{{0, 180, 638, 358}, {640, 180, 638, 358}, {1280, 180, 638, 358}, {320, 540, 638, 358}, {960, 540, 638, 358}}},
		{"7 with one centred", hd, 7, []Rect{{4, 0, 636, 358}, {642, 0, 636, 358}, {1280, 0, 636, 358}, {4, 360, 636, 358}, {642, 360, 636, 358}, {1280, 360, 636, 358}, {642, 720, 636, 358}}},
		{"10 with two centred", hd, 10, []Rect{
			{0, 136, 478, 268}, {480, 136, 478, 268}, {960, 136, 478, 268}, {1440, 136, 478, 268},
			{0, 406, 478, 268}, {480, 406, 478, 268}, {960, 406, 478, 268}, {1440, 406, 478, 268},
			{480, 676, 478, 268}, {960, 676, 478, 268}}},
		{"11 with three centred", hd, 11, []Rect{
			{0, 136, 478, 268}, {480, 136, 478, 268}, {960, 136, 478, 268}, {1440, 136, 478, 268},
			{0, 406, 478, 268}, {480, 406, 478, 268}, {960, 406, 478, 268}, {1440, 406, 478, 268},
			{240, 676, 478, 268}, {720, 676, 478, 268}, {1200, 676, 478, 268}}},
		{"portrait 3 stacked", tall, 3, []Rect{{0, 28, 720, 406}, {0, 436, 720, 406}, {0, 844, 720, 406}}},
		{"portrait 7", tall, 7, []Rect{
			{0, 232, 358, 202}, {360, 232, 358, 202}, {0, 436, 358, 202}, {360, 436, 358, 202},
			{0, 640, 358, 202}, {360, 640, 358, 202}, {180, 844, 358, 202}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := mustCompute(t, c.canvas, people(c.n, Size{}), Config{})
			var got []Rect
			for _, tl := range l.Tiles {
				got = append(got, tl.Tile)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("tiles\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestGridDropped(t *testing.T) {
	for _, n := range []int{13, 14, 20} {
		t.Run(fmt.Sprint(n, " arrival order"), func(t *testing.T) {
			l := mustCompute(t, hd, people(n, Size{1280, 720}), Config{})
			if len(l.Tiles) != MaxTiles {
				t.Fatalf("%d tiles, want %d", len(l.Tiles), MaxTiles)
			}
			var want []string
			for i := MaxTiles; i < n; i++ {
				want = append(want, fmt.Sprint("p", i))
			}
			if !reflect.DeepEqual(l.Dropped, want) {
				t.Errorf("Dropped %v, want %v", l.Dropped, want)
			}
			gridShape(t, l.Tiles, Rect{0, 0, 1920, 1080}, 2)
		})
	}
	t.Run("15 in attribute order", func(t *testing.T) {
		ps := people(15, Size{1280, 720})
		for i := range ps {
			ps[i].Attributes["order"] = fmt.Sprint(15 - i) // p14 first, p0 last
		}
		l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{ParticipantOrderAttribute: "order"}})
		if want := []string{"p2", "p1", "p0"}; !reflect.DeepEqual(l.Dropped, want) {
			t.Errorf("Dropped %v, want %v", l.Dropped, want)
		}
		if got := tileIDs(l.Tiles); got[0] != "p14" || got[11] != "p3" {
			t.Errorf("tiles %v", got)
		}
	})
	t.Run("omitted do not count", func(t *testing.T) {
		ps := people(14, Size{1280, 720})
		ps[0].VideoStopped, ps[5].VideoStopped = true, true
		l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{OmitStoppedVideo: true}})
		if len(l.Tiles) != 12 || len(l.Dropped) != 0 || !reflect.DeepEqual(l.Omitted, []string{"p0", "p5"}) {
			t.Errorf("%d tiles, dropped %v, omitted %v", len(l.Tiles), l.Dropped, l.Omitted)
		}
	})
}

func TestGridGap(t *testing.T) {
	cases := []struct {
		name    string
		gap     *int
		want    int
		w, h    int // tile size for 4 participants on 1920x1080
		n, cols int
	}{
		{"default", nil, 2, 956, 538, 4, 2},
		{"explicit zero", ip(0), 0, 960, 540, 4, 2},
		{"odd 1 rounds up", ip(1), 2, 956, 538, 4, 2},
		{"odd 3 rounds up", ip(3), 4, 956, 538, 4, 2},
		{"10", ip(10), 10, 948, 534, 4, 2},
		{"odd 25 rounds up", ip(25), 26, 934, 526, 4, 2},
		// 2x3 and 3x2 give the same 640x360 tiles: the tie goes to fewer columns.
		{"zero, 6 participants", ip(0), 0, 640, 360, 6, 3}, // 2x3 ties 3x2: landscape spreads along the width
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := mustCompute(t, hd, people(c.n, Size{1280, 720}), Config{Grid: &GridConfig{GridGap: c.gap}})
			if l.Gap != c.want {
				t.Errorf("Gap %d, want %d", l.Gap, c.want)
			}
			if c.gap != nil && l.Gap != EffectiveGap(*c.gap) {
				t.Errorf("Gap %d, EffectiveGap %d", l.Gap, EffectiveGap(*c.gap))
			}
			cols, _, w, h := gridShape(t, l.Tiles, Rect{0, 0, 1920, 1080}, c.want)
			if w != c.w || h != c.h || cols != c.cols {
				t.Errorf("%d cols of %dx%d, want %d of %dx%d", cols, w, h, c.cols, c.w, c.h)
			}
		})
	}
	t.Run("zero gap tiles the canvas", func(t *testing.T) {
		l := mustCompute(t, hd, people(4, Size{}), Config{Grid: &GridConfig{GridGap: ip(0)}})
		want := []Rect{{0, 0, 960, 540}, {960, 0, 960, 540}, {0, 540, 960, 540}, {960, 540, 960, 540}}
		for i, tl := range l.Tiles {
			if tl.Tile != want[i] {
				t.Errorf("tile %d %v, want %v", i, tl.Tile, want[i])
			}
		}
	})
	t.Run("a huge gap is fine with one participant", func(t *testing.T) {
		for _, g := range []int{5000, math.MaxInt} {
			l := mustCompute(t, hd, people(1, Size{}), Config{Grid: &GridConfig{GridGap: ip(g)}})
			if l.Tiles[0].Tile != (Rect{0, 0, 1920, 1080}) {
				t.Errorf("gap %d: tile %v", g, l.Tiles[0].Tile)
			}
		}
	})
}

func TestFeatured(t *testing.T) {
	featuredCfg := func(gap *int) Config {
		return Config{Grid: &GridConfig{FeaturedParticipantAttribute: "featured", GridGap: gap}}
	}
	cases := []struct {
		name     string
		canvas   Size
		n        int
		featured []int // participants with featured=true
		gap      *int
		wantID   string
		featRect Rect
		region   Rect // where the others go
	}{
		{"landscape, default gap", hd, 5, []int{2}, nil, "p2", Rect{0, 0, 1278, 1080}, Rect{1280, 0, 640, 1080}},
		{"landscape, gap 0: exactly two thirds", hd, 5, []int{2}, ip(0), "p2", Rect{0, 0, 1280, 1080}, Rect{1280, 0, 640, 1080}},
		{"landscape, gap 10", hd, 3, []int{0}, ip(10), "p0", Rect{0, 0, 1272, 1080}, Rect{1282, 0, 638, 1080}},
		{"landscape 720p, 12 participants", hd720, 12, []int{11}, nil, "p11", Rect{0, 0, 852, 720}, Rect{854, 0, 426, 720}},
		{"portrait: top two thirds", tall, 4, []int{3}, nil, "p3", Rect{0, 0, 720, 852}, Rect{0, 854, 720, 426}},
		{"portrait, gap 0", tall, 4, []int{3}, ip(0), "p3", Rect{0, 0, 720, 852}, Rect{0, 852, 720, 428}},
		{"square canvas splits left", Size{1080, 1080}, 2, []int{1}, nil, "p1", Rect{0, 0, 718, 1080}, Rect{720, 0, 360, 1080}},
		{"only the first featured is featured", hd, 4, []int{1, 3}, nil, "p1", Rect{0, 0, 1278, 1080}, Rect{1280, 0, 640, 1080}},
		{"alone takes the whole canvas", hd, 1, []int{0}, nil, "p0", Rect{0, 0, 1920, 1080}, Rect{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := people(c.n, Size{1280, 720})
			for _, i := range c.featured {
				ps[i].Attributes["featured"] = "true"
			}
			l := mustCompute(t, c.canvas, ps, featuredCfg(c.gap))
			feats := tilesOf(l, SlotFeatured)
			if len(feats) != 1 {
				t.Fatalf("%d featured tiles", len(feats))
			}
			f := feats[0]
			if f.ID != c.wantID || f.Tile != c.featRect || f.Fill != FillContain {
				t.Errorf("featured %s %v %s, want %s %v CONTAIN", f.ID, f.Tile, f.Fill, c.wantID, c.featRect)
			}
			others := tilesOf(l, SlotGrid)
			if len(others) != c.n-1 {
				t.Fatalf("%d other tiles, want %d", len(others), c.n-1)
			}
			if c.n == 1 {
				return
			}
			gap := l.Gap
			if c.canvas.W >= c.canvas.H {
				if c.region.X != f.Tile.X+f.Tile.W+gap || c.region.X+c.region.W != c.canvas.W {
					t.Errorf("region %v does not start gap %d right of %v", c.region, gap, f.Tile)
				}
			} else if c.region.Y != f.Tile.Y+f.Tile.H+gap || c.region.Y+c.region.H != c.canvas.H {
				t.Errorf("region %v does not start gap %d below %v", c.region, gap, f.Tile)
			}
			gridShape(t, others, c.region, gap)
			var wantOrder []string
			for _, p := range ps {
				if p.ID != c.wantID {
					wantOrder = append(wantOrder, p.ID)
				}
			}
			if got := tileIDs(others); !reflect.DeepEqual(got, wantOrder) {
				t.Errorf("others %v, want %v", got, wantOrder)
			}
			for _, o := range others {
				if o.Fill != FillCover || o.Tile.Intersects(f.Tile) {
					t.Errorf("other %s: %v %s", o.ID, o.Tile, o.Fill)
				}
			}
		})
	}
	t.Run("featured 1 of 5 others stacked in the third", func(t *testing.T) {
		ps := people(5, Size{1280, 720})
		ps[0].Attributes["featured"] = "true"
		l := mustCompute(t, hd, ps, featuredCfg(nil))
		want := []Rect{{1362, 0, 476, 268}, {1362, 270, 476, 268}, {1362, 540, 476, 268}, {1362, 810, 476, 268}}
		for i, o := range tilesOf(l, SlotGrid) {
			if o.Tile != want[i] {
				t.Errorf("tile %d: %v, want %v", i, o.Tile, want[i])
			}
		}
	})
	t.Run("featured follows participant order", func(t *testing.T) {
		ps := people(4, Size{1280, 720})
		ps[0].Attributes["featured"], ps[0].Attributes["order"] = "true", "5"
		ps[2].Attributes["featured"], ps[2].Attributes["order"] = "true", "1"
		l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{FeaturedParticipantAttribute: "featured", ParticipantOrderAttribute: "order"}})
		if f := tilesOf(l, SlotFeatured); len(f) != 1 || f[0].ID != "p2" {
			t.Errorf("featured %v, want p2", tileIDs(f))
		}
	})
	for _, v := range []string{"false", "TRUE", "True", "1", "yes", ""} {
		t.Run(fmt.Sprintf("value %q is not featured", v), func(t *testing.T) {
			ps := people(3, Size{1280, 720})
			ps[1].Attributes["featured"] = v
			l := mustCompute(t, hd, ps, featuredCfg(nil))
			if f := tilesOf(l, SlotFeatured); len(f) != 0 {
				t.Errorf("featured %v", tileIDs(f))
			}
		})
	}
	t.Run("no attribute configured", func(t *testing.T) {
		ps := people(3, Size{1280, 720})
		ps[1].Attributes["featured"] = "true"
		l := mustCompute(t, hd, ps, Config{})
		if f := tilesOf(l, SlotFeatured); len(f) != 0 {
			t.Errorf("featured %v without featuredParticipantAttribute", tileIDs(f))
		}
	})
	t.Run("stopped featured participant omitted", func(t *testing.T) {
		ps := people(3, Size{1280, 720})
		ps[1].Attributes["featured"] = "true"
		ps[1].VideoStopped = true
		l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{FeaturedParticipantAttribute: "featured", OmitStoppedVideo: true}})
		if f := tilesOf(l, SlotFeatured); len(f) != 0 || !reflect.DeepEqual(l.Omitted, []string{"p1"}) {
			t.Errorf("featured %v, omitted %v", tileIDs(f), l.Omitted)
		}
	})
	t.Run("stopped featured participant placeholder", func(t *testing.T) {
		ps := people(3, Size{1280, 720})
		ps[1].Attributes["featured"] = "true"
		ps[1].VideoStopped = true
		l := mustCompute(t, hd, ps, featuredCfg(nil))
		f := tilesOf(l, SlotFeatured)
		if len(f) != 1 || f[0].ID != "p1" || !f[0].Placeholder || f[0].Crop != (Rect{}) || f[0].Video != f[0].Tile {
			t.Errorf("featured %+v", f)
		}
	})
}

func TestFillModeDefaults(t *testing.T) {
	for _, c := range []struct {
		mode           FillMode
		tile, featured FillMode
	}{
		{FillUnset, FillCover, FillContain},
		{FillCover, FillCover, FillCover},
		{FillContain, FillContain, FillContain},
		{FillFill, FillFill, FillFill},
	} {
		t.Run(fmt.Sprintf("%q", c.mode), func(t *testing.T) {
			ps := people(3, Size{640, 480})
			ps[0].Attributes["featured"] = "true"
			l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{FeaturedParticipantAttribute: "featured", VideoFillMode: c.mode}})
			for _, tl := range l.Tiles {
				want := c.tile
				if tl.Slot == SlotFeatured {
					want = c.featured
				}
				if tl.Fill != want {
					t.Errorf("%s (%s): fill %s, want %s", tl.ID, tl.Slot, tl.Fill, want)
				}
			}
		})
	}
}

func TestAspectRatios(t *testing.T) {
	cases := []struct {
		name       string
		aspect     AspectRatio
		video      Size
		n          int
		num, den   int // 0 for AUTO
		cols, w, h int
	}{
		{"VIDEO", AspectVideo, Size{1280, 720}, 4, 16, 9, 2, 956, 538},
		{"default is VIDEO", "", Size{1280, 720}, 4, 16, 9, 2, 956, 538},
		{"SQUARE", AspectSquare, Size{1280, 720}, 4, 1, 1, 2, 538, 538},
		{"SQUARE 1", AspectSquare, Size{1280, 720}, 1, 1, 1, 1, 1080, 1080},
		{"SQUARE 9", AspectSquare, Size{1280, 720}, 9, 1, 1, 5, 382, 382},
		{"PORTRAIT", AspectPortrait, Size{1280, 720}, 4, 3, 4, 4, 478, 638},
		{"PORTRAIT 1", AspectPortrait, Size{1280, 720}, 1, 3, 4, 1, 810, 1080},
		{"PORTRAIT 8", AspectPortrait, Size{1280, 720}, 8, 3, 4, 4, 402, 536},
		{"AUTO landscape videos", AspectAuto, Size{1280, 720}, 4, 0, 0, 2, 958, 538},
		{"AUTO unknown videos are 16:9", AspectAuto, Size{}, 4, 0, 0, 2, 958, 538},
		{"AUTO portrait videos", AspectAuto, Size{720, 1280}, 4, 0, 0, 4, 478, 1080},
		{"AUTO 1 fills", AspectAuto, Size{720, 1280}, 1, 0, 0, 1, 1920, 1080},
		{"AUTO 3", AspectAuto, Size{1280, 720}, 3, 0, 0, 2, 958, 538},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := mustCompute(t, hd, people(c.n, c.video), Config{Grid: &GridConfig{VideoAspectRatio: c.aspect}})
			cols, rows, w, h := gridShape(t, l.Tiles, Rect{0, 0, 1920, 1080}, 2)
			if cols != c.cols || w != c.w || h != c.h {
				t.Errorf("%d cols of %dx%d, want %d of %dx%d", cols, w, h, c.cols, c.w, c.h)
			}
			if c.num != 0 && !aspectWithin(w, h, c.num, c.den) {
				t.Errorf("tile %dx%d is not %d:%d", w, h, c.num, c.den)
			}
			if c.aspect == AspectAuto {
				// The cells fill the canvas up to the even rounding of each.
				if blockW := cols*w + (cols-1)*2; 1920-blockW >= 2*cols {
					t.Errorf("AUTO block %d wide leaves %d px", blockW, 1920-blockW)
				}
				if blockH := rows*h + (rows-1)*2; 1080-blockH >= 2*rows {
					t.Errorf("AUTO block %d high leaves %d px", blockH, 1080-blockH)
				}
			}
		})
	}
	t.Run("AUTO takes the median aspect", func(t *testing.T) {
		ps := people(4, Size{720, 1280})
		ps[0].Video = Size{1280, 720}
		ps[1].Video = Size{} // unknown: not counted
		// Known: 16:9, 9:16, 9:16: median 9:16, portrait cells.
		l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{VideoAspectRatio: AspectAuto}})
		if cols, _, w, h := gridShape(t, l.Tiles, Rect{0, 0, 1920, 1080}, 2); cols != 4 || w != 478 || h != 1080 {
			t.Errorf("%d cols of %dx%d, want 4 of 478x1080", cols, w, h)
		}
	})
	t.Run("aspect of the featured third", func(t *testing.T) {
		ps := people(4, Size{1280, 720})
		ps[0].Attributes["featured"] = "true"
		l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{FeaturedParticipantAttribute: "featured", VideoAspectRatio: AspectSquare}})
		cols, rows, w, h := gridShape(t, tilesOf(l, SlotGrid), Rect{1280, 0, 640, 1080}, 2)
		if cols != 1 || rows != 3 || w != 358 || h != 358 {
			t.Errorf("%d x %d of %dx%d, want 1 x 3 of 358x358", cols, rows, w, h)
		}
	})
}

func TestOmitStoppedVideo(t *testing.T) {
	ps := people(5, Size{1280, 720})
	ps[1].VideoStopped = true
	ps[3].VideoStopped = true
	t.Run("true omits", func(t *testing.T) {
		l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{OmitStoppedVideo: true}})
		if got := tileIDs(l.Tiles); !reflect.DeepEqual(got, []string{"p0", "p2", "p4"}) {
			t.Errorf("tiles %v", got)
		}
		if !reflect.DeepEqual(l.Omitted, []string{"p1", "p3"}) {
			t.Errorf("Omitted %v", l.Omitted)
		}
		// Laid out as three participants, not five.
		if cols, rows, w, h := gridShape(t, l.Tiles, Rect{0, 0, 1920, 1080}, 2); cols != 2 || rows != 2 || w != 956 || h != 538 {
			t.Errorf("%d x %d of %dx%d", cols, rows, w, h)
		}
	})
	t.Run("false keeps placeholders", func(t *testing.T) {
		l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{OmitStoppedVideo: false}})
		if len(l.Tiles) != 5 || len(l.Omitted) != 0 {
			t.Fatalf("%d tiles, omitted %v", len(l.Tiles), l.Omitted)
		}
		for i, tl := range l.Tiles {
			stopped := i == 1 || i == 3
			if tl.Placeholder != stopped {
				t.Errorf("%s: Placeholder %v", tl.ID, tl.Placeholder)
			}
			if stopped && (tl.Crop != (Rect{}) || tl.Video != tl.Tile) {
				t.Errorf("%s: placeholder with Crop %v Video %v", tl.ID, tl.Crop, tl.Video)
			}
			if !stopped && tl.Crop.Empty() {
				t.Errorf("%s: empty Crop", tl.ID)
			}
		}
	})
	t.Run("all stopped", func(t *testing.T) {
		all := people(3, Size{1280, 720})
		for i := range all {
			all[i].VideoStopped = true
		}
		l := mustCompute(t, hd, all, Config{Grid: &GridConfig{OmitStoppedVideo: true}})
		if len(l.Tiles) != 0 || len(l.Omitted) != 3 {
			t.Errorf("%d tiles, omitted %v", len(l.Tiles), l.Omitted)
		}
	})
}

func TestParticipantOrder(t *testing.T) {
	cases := []struct {
		name   string
		values []string // "-" is a missing attribute
		want   []string
	}{
		{"ascending", []string{"3", "1", "2"}, []string{"p1", "p2", "p0"}},
		{"numeric not lexicographic", []string{"10", "9", "2", "100"}, []string{"p2", "p1", "p0", "p3"}},
		{"negatives first", []string{"1", "-1", "0", "-10"}, []string{"p3", "p1", "p2", "p0"}},
		{"ties by arrival", []string{"5", "1", "5", "1"}, []string{"p1", "p3", "p0", "p2"}},
		{"non-integers after, in arrival order", []string{"abc", "2", "1.5", "-", "", "1", "x1"}, []string{"p5", "p1", "p0", "p2", "p3", "p4", "p6"}},
		{"no integers keeps arrival order", []string{"b", "a", "-", "1.0"}, []string{"p0", "p1", "p2", "p3"}},
		{"the full mix", []string{"10", "9", "-3", "abc", "", "-", "1.5", "9", "0"}, []string{"p2", "p8", "p1", "p7", "p0", "p3", "p4", "p5", "p6"}},
		{"large values", []string{"9223372036854775807", "-9223372036854775808", "99999999999999999999"}, []string{"p1", "p0", "p2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := people(len(c.values), Size{1280, 720})
			for i, v := range c.values {
				if v != "-" {
					ps[i].Attributes["order"] = v
				}
			}
			l := mustCompute(t, hd, ps, Config{Grid: &GridConfig{ParticipantOrderAttribute: "order"}})
			if got := tileIDs(l.Tiles); !reflect.DeepEqual(got, c.want) {
				t.Errorf("order %v, want %v", got, c.want)
			}
			for _, tl := range l.Tiles {
				if ps[tl.Participant].ID != tl.ID {
					t.Errorf("tile %s points at participant %d", tl.ID, tl.Participant)
				}
			}
			gridShape(t, l.Tiles, Rect{0, 0, 1920, 1080}, 2)
		})
	}
	t.Run("without the attribute configured", func(t *testing.T) {
		ps := people(3, Size{1280, 720})
		ps[0].Attributes["order"] = "3"
		ps[1].Attributes["order"] = "1"
		l := mustCompute(t, hd, ps, Config{})
		if got := tileIDs(l.Tiles); !reflect.DeepEqual(got, []string{"p0", "p1", "p2"}) {
			t.Errorf("order %v", got)
		}
	})
}

// TestCrop checks Crop and Video for every fill mode against exact values.
func TestCrop(t *testing.T) {
	one := func(video Size, stopped bool, grid GridConfig, canvas Size) Tile {
		t.Helper()
		ps := people(1, video)
		ps[0].VideoStopped = stopped
		l := mustCompute(t, canvas, ps, Config{Grid: &grid})
		return l.Tiles[0]
	}
	cases := []struct {
		name         string
		video        Size
		stopped      bool
		grid         GridConfig
		canvas       Size
		tile, vid, c Rect
	}{
		{"COVER 16:9 into a square tile", Size{1280, 720}, false, GridConfig{VideoAspectRatio: AspectSquare}, hd,
			Rect{420, 0, 1080, 1080}, Rect{420, 0, 1080, 1080}, Rect{280, 0, 720, 720}},
		{"COVER portrait into a 16:9 tile", Size{720, 1280}, false, GridConfig{}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{0, 436, 720, 406}},
		{"COVER same aspect keeps the frame", Size{1280, 720}, false, GridConfig{}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{0, 0, 1280, 720}},
		{"COVER 4:3 into 16:9", Size{640, 480}, false, GridConfig{}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{0, 60, 640, 360}},
		{"COVER odd source", Size{641, 481}, false, GridConfig{}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{0, 60, 640, 360}},
		{"COVER 16:9 into a portrait tile", Size{1920, 1080}, false, GridConfig{VideoAspectRatio: AspectPortrait}, hd,
			Rect{554, 0, 810, 1080}, Rect{554, 0, 810, 1080}, Rect{554, 0, 810, 1080}},
		{"CONTAIN 16:9 into a square tile", Size{1280, 720}, false, GridConfig{VideoAspectRatio: AspectSquare, VideoFillMode: FillContain}, hd,
			Rect{420, 0, 1080, 1080}, Rect{420, 236, 1080, 608}, Rect{0, 0, 1280, 720}},
		{"CONTAIN portrait into a 16:9 tile", Size{720, 1280}, false, GridConfig{VideoFillMode: FillContain}, hd,
			Rect{0, 0, 1920, 1080}, Rect{656, 0, 608, 1080}, Rect{0, 0, 720, 1280}},
		{"CONTAIN same aspect fills the tile", Size{1280, 720}, false, GridConfig{VideoFillMode: FillContain}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{0, 0, 1280, 720}},
		{"CONTAIN odd source", Size{1281, 721}, false, GridConfig{VideoFillMode: FillContain, VideoAspectRatio: AspectSquare}, hd,
			Rect{420, 0, 1080, 1080}, Rect{420, 236, 1080, 608}, Rect{0, 0, 1280, 720}},
		{"FILL stretches the whole frame", Size{720, 1280}, false, GridConfig{VideoFillMode: FillFill}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{0, 0, 720, 1280}},
		{"FILL odd source", Size{1281, 721}, false, GridConfig{VideoFillMode: FillFill}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{0, 0, 1280, 720}},
		{"unknown size COVER", Size{}, false, GridConfig{}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{}},
		{"unknown size CONTAIN", Size{}, false, GridConfig{VideoFillMode: FillContain, VideoAspectRatio: AspectSquare}, hd,
			Rect{420, 0, 1080, 1080}, Rect{420, 0, 1080, 1080}, Rect{}},
		{"unknown size FILL", Size{}, false, GridConfig{VideoFillMode: FillFill}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{}},
		{"1-pixel size is unknown", Size{1, 720}, false, GridConfig{VideoFillMode: FillContain}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{}},
		{"stopped video has no crop", Size{1280, 720}, true, GridConfig{VideoFillMode: FillContain, VideoAspectRatio: AspectSquare}, hd,
			Rect{420, 0, 1080, 1080}, Rect{420, 0, 1080, 1080}, Rect{}},
		{"CONTAIN 2x2 source", Size{2, 2}, false, GridConfig{VideoFillMode: FillContain}, hd,
			Rect{0, 0, 1920, 1080}, Rect{420, 0, 1080, 1080}, Rect{0, 0, 2, 2}},
		{"COVER extreme panorama", Size{8000, 2}, false, GridConfig{}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 0, 1920, 1080}, Rect{3998, 0, 4, 2}},
		{"CONTAIN extreme panorama", Size{8000, 2}, false, GridConfig{VideoFillMode: FillContain}, hd,
			Rect{0, 0, 1920, 1080}, Rect{0, 538, 1920, 2}, Rect{0, 0, 8000, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tl := one(c.video, c.stopped, c.grid, c.canvas)
			if tl.Tile != c.tile || tl.Video != c.vid || tl.Crop != c.c {
				t.Errorf("Tile %v Video %v Crop %v\nwant Tile %v Video %v Crop %v", tl.Tile, tl.Video, tl.Crop, c.tile, c.vid, c.c)
			}
		})
	}
	t.Run("COVER crop has the tile's aspect", func(t *testing.T) {
		for _, v := range []Size{{1280, 720}, {720, 1280}, {640, 480}, {1000, 1000}, {1921, 1079}} {
			for _, a := range []AspectRatio{AspectVideo, AspectSquare, AspectPortrait} {
				tl := one(v, false, GridConfig{VideoAspectRatio: a}, hd)
				// crop.W/crop.H == tile.W/tile.H up to 2 px on the cropped side.
				if d := abs(tl.Crop.W*tl.Tile.H - tl.Crop.H*tl.Tile.W); d > 2*max(tl.Tile.W, tl.Tile.H) {
					t.Errorf("%v into %s tile %v: crop %v", v, a, tl.Tile, tl.Crop)
				}
				// Centred: equal margins up to the even rounding.
				if l, r := tl.Crop.X, v.W&^1-tl.Crop.X-tl.Crop.W; abs(l-r) > 2 {
					t.Errorf("%v into %s tile: crop %v not centred horizontally", v, a, tl.Crop)
				}
				if tp, b := tl.Crop.Y, v.H&^1-tl.Crop.Y-tl.Crop.H; abs(tp-b) > 2 {
					t.Errorf("%v into %s tile: crop %v not centred vertically", v, a, tl.Crop)
				}
			}
		}
	})
}
