// Package layout turns the participants of a stage and an IVS layout
// configuration (grid or picture-in-picture) into tile geometry on a canvas.
// It is pure geometry: no cgo, no I/O, no clock, so it can be tested and fuzzed
// exhaustively. Drawing the tiles is the compositor's job.
//
// # Rules
//
// Every rectangle has even coordinates and sizes (the canvas is I420, whose
// chroma planes are subsampled 2x2), lies inside the canvas, and grid tiles
// never overlap. An odd gridGap is therefore rounded up to the next even
// number; EffectiveGap reports the gap actually drawn.
//
// Order. Participants are ordered as IVS documents for participantOrderAttribute:
// those whose attribute holds an integer come first, ascending (negatives
// before positives, numeric not lexicographic, ties by arrival); the others
// (attribute missing, empty or not an integer such as "1.5") follow in arrival
// order. At most MaxTiles participants are placed (IVS's limit of 12
// publishers per stage); the rest are reported in Layout.Dropped.
//
// Grid. The participant whose featuredParticipantAttribute is "true" (the
// first in order, if several) takes the featured slot: two thirds of the
// canvas on its long side (left on a landscape canvas, top on a portrait
// one); the others share the remaining third, separated from it by the gap.
// Tiles of a region are arranged in the number of columns that maximises the
// tile area for the configured aspect ratio (VIDEO 16:9, SQUARE 1:1,
// PORTRAIT 3:4); ties go to the grid with fewer empty cells, then to more
// columns on a landscape region and fewer on a portrait or square one. The tile block is centred in its
// region and an incomplete last row is centred too. With AUTO the tiles take
// whatever shape fills the region, with the column count whose cell shape is
// closest to the participants' own median aspect ratio (16:9 when unknown).
// Fill mode defaults to COVER for tiles and CONTAIN for the featured slot.
//
// PiP. The PiP window holds the participant whose pipParticipantAttribute is
// "true"; when none has it, the last participant in order takes the window
// as soon as there are two. Everyone else forms the background, laid out as
// a grid (featured slot included) that fills the canvas, with PiP's gridGap
// (default 0). The window sits in pipPosition's corner, pipOffset pixels from
// both nearest edges, above the background (higher Z). Unset pipWidth and
// pipHeight are derived from the PiP participant's aspect ratio: the largest
// such rectangle within a quarter of the canvas's width and height; one set
// dimension derives the other. With pipBehavior DYNAMIC the PiP participant
// takes the whole canvas while the background is empty. Fill mode defaults
// to COVER everywhere.
package layout

import (
	"math"
	"sort"
	"strconv"

	"github.com/stagehand-rt/stagehand/internal/validation"
)

// MaxTiles is the most participants a layout places: IVS allows 12
// publishers on a stage.
const MaxTiles = 12

// Size is a canvas or frame size in pixels.
type Size struct{ W, H int }

// Rect is a rectangle in pixels; X, Y is its top-left corner.
type Rect struct{ X, Y, W, H int }

// Empty reports whether r covers no pixel.
func (r Rect) Empty() bool { return r.W <= 0 || r.H <= 0 }

// Intersects reports whether r and o share at least one pixel.
func (r Rect) Intersects(o Rect) bool {
	return !r.Empty() && !o.Empty() && r.X < o.X+o.W && o.X < r.X+r.W && r.Y < o.Y+o.H && o.Y < r.Y+r.H
}

// Contains reports whether o lies entirely inside r.
func (r Rect) Contains(o Rect) bool {
	return o.X >= r.X && o.Y >= r.Y && o.X+o.W <= r.X+r.W && o.Y+o.H <= r.Y+r.H
}

// Participant is one stage participant as the layout sees it.
type Participant struct {
	ID         string
	Attributes map[string]string
	// VideoStopped is true when the participant publishes no video or has
	// stopped it: it gets a placeholder tile, or none with omitStoppedVideo.
	VideoStopped bool
	// Video is the size of the participant's latest frame; zero when unknown.
	Video Size
}

// Slot is the role a tile plays in the layout.
type Slot int

// Slots.
const (
	SlotGrid     Slot = iota // a regular grid tile
	SlotFeatured             // the featured slot
	SlotPiP                  // the picture-in-picture window
)

func (s Slot) String() string {
	switch s {
	case SlotFeatured:
		return "featured"
	case SlotPiP:
		return "pip"
	default:
		return "grid"
	}
}

// Tile is where one participant is drawn.
type Tile struct {
	Participant int    // index into the participants passed to Compute
	ID          string // the participant's ID
	Slot        Slot
	Tile        Rect     // the tile on the canvas; the part Video does not cover shows the background
	Video       Rect     // where the picture lands on the canvas: Tile, or a letterboxed part of it with CONTAIN
	Crop        Rect     // the source frame's part shown: all of it, or a centred COVER crop; empty if its size is unknown
	Fill        FillMode // the resolved fill mode
	Z           int      // drawing order: higher is drawn later, on top
	Placeholder bool     // the participant's video is stopped: draw a placeholder instead of a frame
}

// Layout is the geometry of one canvas.
type Layout struct {
	Canvas Size
	Tiles  []Tile // in drawing order (ascending Z)
	// Gap is the gap drawn between tiles: gridGap rounded up to even.
	Gap int
	// Dropped lists the participants beyond MaxTiles, in order, that have no tile.
	Dropped []string
	// Omitted lists participants left out by omitStoppedVideo.
	Omitted []string
}

// EffectiveGap is the gap drawn for a configured gridGap: rounded up to even
// so that tiles keep even coordinates. math.MaxInt, whose even successor
// overflows, gives math.MaxInt-1: no canvas is that wide either way.
func EffectiveGap(gap int) int {
	if gap == math.MaxInt {
		return gap - 1
	}
	return gap + gap&1
}

// Compute lays out participants (in arrival order) on a canvas.
func Compute(canvas Size, participants []Participant, cfg Config) (Layout, error) {
	if err := cfg.Validate(); err != nil {
		return Layout{}, err
	}
	if canvas.W < 2 || canvas.H < 2 || canvas.W%2 != 0 || canvas.H%2 != 0 {
		return Layout{}, validation.Errorf("canvas", "%dx%d: width and height must be even and at least 2",
			canvas.W, canvas.H)
	}
	cfg = cfg.WithDefaults()
	if cfg.PiP != nil {
		return computePip(canvas, participants, cfg.PiP)
	}
	return computeGrid(canvas, participants, cfg.Grid)
}

// visible orders participants, drops omitted ones and caps at MaxTiles.
func visible(l *Layout, ps []Participant, omitStopped bool, orderAttr string) []int {
	idx := make([]int, 0, len(ps))
	for i, p := range ps {
		if omitStopped && p.VideoStopped {
			l.Omitted = append(l.Omitted, p.ID)
			continue
		}
		idx = append(idx, i)
	}
	if orderAttr != "" {
		key := func(i int) (int64, bool) {
			v, err := strconv.ParseInt(ps[i].Attributes[orderAttr], 10, 64)
			return v, err == nil
		}
		sort.SliceStable(idx, func(a, b int) bool {
			ka, oka := key(idx[a])
			kb, okb := key(idx[b])
			if oka != okb {
				return oka
			}
			return oka && ka < kb
		})
	}
	if len(idx) > MaxTiles {
		for _, i := range idx[MaxTiles:] {
			l.Dropped = append(l.Dropped, ps[i].ID)
		}
		idx = idx[:MaxTiles]
	}
	return idx
}

// pick removes and returns the first participant whose attribute attr is "true".
func pick(ps []Participant, idx []int, attr string) (int, []int) {
	if attr == "" {
		return -1, idx
	}
	for k, i := range idx {
		if ps[i].Attributes[attr] == "true" {
			rest := append(append(make([]int, 0, len(idx)-1), idx[:k]...), idx[k+1:]...)
			return i, rest
		}
	}
	return -1, idx
}

func computeGrid(canvas Size, ps []Participant, g *GridConfig) (Layout, error) {
	l := Layout{Canvas: canvas, Gap: EffectiveGap(*g.GridGap)}
	idx := visible(&l, ps, g.OmitStoppedVideo, g.ParticipantOrderAttribute)
	featured, others := pick(ps, idx, g.FeaturedParticipantAttribute)
	tileFill, featuredFill := FillCover, FillContain
	if g.VideoFillMode != FillUnset {
		tileFill, featuredFill = g.VideoFillMode, g.VideoFillMode
	}
	err := placeRegion(&l, ps, Rect{0, 0, canvas.W, canvas.H}, featured, others, g.VideoAspectRatio,
		tileFill, featuredFill, "layout.grid.gridGap")
	return l, err
}

// placeRegion lays out an optional featured participant and a grid of others
// in region, appending their tiles at Z 0. gapField names the gridGap member
// in a ValidationError when the gap leaves no room.
func placeRegion(l *Layout, ps []Participant, region Rect, featured int, others []int, aspect AspectRatio,
	tileFill, featuredFill FillMode, gapField string) error {
	gridArea := region
	if featured >= 0 {
		featArea := region
		if len(others) > 0 {
			featArea, gridArea = splitFeatured(region, l.Gap)
			if featArea.W < 2 || featArea.H < 2 || gridArea.W < 2 || gridArea.H < 2 {
				return validation.Errorf(gapField, "gap %d leaves no room for the featured slot in %dx%d",
					l.Gap, region.W, region.H)
			}
		}
		l.Tiles = append(l.Tiles, makeTile(ps, featured, SlotFeatured, featArea, featuredFill, 0))
	}
	if len(others) == 0 {
		return nil
	}
	ratio, auto := tileShape(ps, others, aspect)
	rects, ok := gridRects(gridArea, len(others), l.Gap, ratio, auto)
	if !ok {
		return validation.Errorf(gapField, "gap %d leaves no room for %d tiles in %dx%d",
			l.Gap, len(others), gridArea.W, gridArea.H)
	}
	for k, r := range rects {
		l.Tiles = append(l.Tiles, makeTile(ps, others[k], SlotGrid, r, tileFill, 0))
	}
	return nil
}

// splitFeatured gives the featured slot two thirds of region's long side.
func splitFeatured(region Rect, gap int) (featured, rest Rect) {
	if gap >= max(region.W, region.H) {
		return Rect{}, Rect{} // no room, and (region.W-gap)*2 could overflow int
	}
	if region.W >= region.H {
		fw := even((region.W - gap) * 2 / 3)
		return Rect{region.X, region.Y, fw, region.H},
			Rect{region.X + fw + gap, region.Y, region.W - fw - gap, region.H}
	}
	fh := even((region.H - gap) * 2 / 3)
	return Rect{region.X, region.Y, region.W, fh},
		Rect{region.X, region.Y + fh + gap, region.W, region.H - fh - gap}
}

// tileShape is the shape of grid tiles: a fixed width/height ratio, or with
// AUTO (auto true) the ratio the region's cells should come closest to.
func tileShape(ps []Participant, idx []int, a AspectRatio) (ratio float64, auto bool) {
	switch a {
	case AspectSquare:
		return 1, false
	case AspectPortrait:
		return 3.0 / 4, false
	case AspectAuto:
		return medianAspect(ps, idx), true
	default:
		return 16.0 / 9, false
	}
}

// medianAspect is the median aspect ratio of the participants' known video sizes.
func medianAspect(ps []Participant, idx []int) float64 {
	var rs []float64
	for _, i := range idx {
		if v := ps[i].Video; v.W > 0 && v.H > 0 {
			rs = append(rs, float64(v.W)/float64(v.H))
		}
	}
	if len(rs) == 0 {
		return 16.0 / 9
	}
	sort.Float64s(rs)
	return rs[len(rs)/2]
}

// gridRects arranges n tiles in area. Widths and heights are even and the
// gap between neighbours is exactly gap. ok is false when area cannot hold n
// tiles of at least 2x2 pixels.
func gridRects(area Rect, n, gap int, ratio float64, auto bool) ([]Rect, bool) {
	cols, w, h := bestGrid(area, n, gap, ratio, auto)
	if cols == 0 {
		return nil, false
	}
	rows := (n + cols - 1) / cols
	blockH := rows*h + (rows-1)*gap
	y0 := area.Y + even((area.H-blockH)/2)
	rects := make([]Rect, 0, n)
	for r := 0; r < rows; r++ {
		inRow := min(cols, n-r*cols)
		rowW := inRow*w + (inRow-1)*gap
		x0 := area.X + even((area.W-rowW)/2)
		for c := 0; c < inRow; c++ {
			rects = append(rects, Rect{x0 + c*(w+gap), y0 + r*(h+gap), w, h})
		}
	}
	return rects, true
}

// bestGrid picks the column count and the even tile size for n tiles: the
// largest tile area for a fixed ratio, the cell shape closest to ratio for
// AUTO. Ties go to fewer empty cells, then to more columns on a landscape
// area and fewer on a portrait or square one. cols is 0 when nothing fits.
func bestGrid(area Rect, n, gap int, ratio float64, auto bool) (cols, w, h int) {
	best, bestEmpty := math.Inf(-1), 0
	for c := 1; c <= n; c++ {
		r := (n + c - 1) / c
		if c > 1 && gap > area.W/(c-1) || r > 1 && gap > area.H/(r-1) {
			continue // the gaps alone overflow the area (and (c-1)*gap could overflow int)
		}
		cw := evenFloor(float64(area.W-(c-1)*gap) / float64(c))
		ch := evenFloor(float64(area.H-(r-1)*gap) / float64(r))
		if cw < 2 || ch < 2 {
			continue
		}
		tw, th := cw, ch
		var score float64
		if auto {
			score = -math.Abs(math.Log(float64(cw) / float64(ch) / ratio))
		} else {
			tw = min(cw, evenFloor(float64(ch)*ratio))
			th = min(ch, evenRound(float64(tw)/ratio))
			if tw < 2 || th < 2 {
				continue
			}
			score = float64(tw) * float64(th)
		}
		// Ties go to the grid with fewer empty cells, then to more columns
		// on a landscape area (fewer on a portrait one), so that equal tiles
		// spread along the area's long side.
		empty := c*r - n
		if score > best || score == best && (empty < bestEmpty || empty == bestEmpty && area.W > area.H) {
			bestEmpty = empty
			best, cols, w, h = score, c, tw, th
		}
	}
	return cols, w, h
}

func makeTile(ps []Participant, i int, slot Slot, tile Rect, fill FillMode, z int) Tile {
	p := ps[i]
	t := Tile{Participant: i, ID: p.ID, Slot: slot, Tile: tile, Video: tile, Fill: fill, Z: z, Placeholder: p.VideoStopped}
	if p.VideoStopped || p.Video.W < 2 || p.Video.H < 2 {
		return t
	}
	src := p.Video
	t.Crop = Rect{0, 0, evenFloor(float64(src.W)), evenFloor(float64(src.H))}
	switch fill {
	case FillCover:
		t.Crop = coverCrop(src, tile)
	case FillContain:
		t.Video = containRect(src, tile)
	}
	return t
}

// coverCrop is the largest centred part of src with tile's aspect ratio.
func coverCrop(src Size, tile Rect) Rect {
	w, h := float64(src.W), float64(src.H)
	if w*float64(tile.H) > h*float64(tile.W) {
		w = h * float64(tile.W) / float64(tile.H)
	} else {
		h = w * float64(tile.H) / float64(tile.W)
	}
	cw, ch := max(2, evenRound(w)), max(2, evenRound(h))
	cw, ch = min(cw, src.W&^1), min(ch, src.H&^1)
	return Rect{even((src.W - cw) / 2), even((src.H - ch) / 2), cw, ch}
}

// containRect is the largest centred rectangle inside tile with src's aspect ratio.
func containRect(src Size, tile Rect) Rect {
	w, h := float64(tile.W), float64(tile.H)
	if w*float64(src.H) > h*float64(src.W) {
		w = h * float64(src.W) / float64(src.H)
	} else {
		h = w * float64(src.H) / float64(src.W)
	}
	vw, vh := max(2, evenRound(w)), max(2, evenRound(h))
	vw, vh = min(vw, tile.W), min(vh, tile.H)
	return Rect{tile.X + even((tile.W-vw)/2), tile.Y + even((tile.H-vh)/2), vw, vh}
}

func even(v int) int { return v &^ 1 }

func evenFloor(v float64) int { return int(math.Floor(v)) &^ 1 }

func evenRound(v float64) int { return int(math.Round(v/2)) * 2 }
