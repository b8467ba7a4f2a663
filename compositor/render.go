package compositor

import (
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/layout"
)

// drawJob is one tile to draw in the current batch. Everything it needs is
// resolved before the batch runs (scalers, conversion buffers), so that the
// draw itself touches only its own part of the canvas and its own scaler.
type drawJob struct {
	tile  int         // index into geometry.Tiles
	src   *source     // nil: paint the placeholder
	sc    *scaler     // scales the crop into the tile; nil when box is set
	box   int         // > 0: box-average (1: copy) crop into the tile instead (boxCrop)
	crop  layout.Rect // the part of the frame the box draws: the tile's crop, cut to k times its size
	err   error       // why the frame could not be drawn (a placeholder was painted instead)
	area  layout.Rect
	wave  int // jobs of one wave run at the same time; waves run in order
	guard []byte
}

// planTile queues tile i if its frame changed, if the canvas was repainted,
// or if a tile queued earlier in this render (lower in z-order) overlapped
// it. A tile that overlaps one already in the batch waits for the batch to be
// drawn first, which keeps the z-order.
func (c *Compositor) planTile(i int, full bool) {
	t := &c.geometry.Tiles[i]
	s := c.sources[t.ID]
	live := s != nil && s.has && !t.Placeholder && !t.Crop.Empty()
	d := &c.drawn[i]
	changed := full || !d.valid || (live && d.gen != s.gen) || c.cfg.RedrawAll || c.overlapsRedrawn(t.Tile)
	if !changed {
		c.stats.TilesSkipped++
		return
	}
	c.redrawn = append(c.redrawn, t.Tile)
	job := drawJob{tile: i, area: t.Tile}
	*d = drawn{valid: true}
	if live {
		job.src = s
		*d = drawn{gen: s.gen, valid: true}
		job.err = c.prepare(s)
		k, crop, box := boxCrop(t.Crop, layout.Size{W: t.Video.W, H: t.Video.H})
		switch {
		case job.err != nil:
		case box && !c.cfg.ExactScaling:
			// Writes exactly its rectangle: no overrun to guard.
			job.box, job.crop, job.area = k, crop, union(t.Video, t.Tile)
		default:
			job.sc, job.err = c.tileScaler(i, scalerKey{
				srcW: t.Crop.W, srcH: t.Crop.H, srcFmt: astiav.PixelFormatYuv420P,
				dstW: t.Video.W, dstH: t.Video.H, dstFmt: astiav.PixelFormatYuv420P,
			})
			if job.err == nil {
				job.area, job.guard = c.scaleArea(i, job.sc)
			}
		}
	}
	job.wave = c.waveFor(&job)
	c.batch = append(c.batch, job)
}

// scaleArea is the part of the canvas a scale touches, the bytes it
// overruns and puts back included (a row that overruns the canvas's right
// edge runs into the next row), and the tile's guard buffer.
func (c *Compositor) scaleArea(i int, sc *scaler) (layout.Rect, []byte) {
	for len(c.guards) <= i {
		c.guards = append(c.guards, nil)
	}
	if n := sc.guard(); cap(c.guards[i]) < n {
		c.guards[i] = make([]byte, n)
	}
	v := c.geometry.Tiles[i].Video
	a := v
	a.W += max(overrun(v.W), 2*overrun(v.W/2))
	if a.X+a.W > c.cfg.Canvas.W {
		a = layout.Rect{Y: v.Y, W: c.cfg.Canvas.W, H: v.H + 2}
	}
	return union(a, c.geometry.Tiles[i].Tile), c.guards[i][:sc.guard()]
}

// waveFor puts a job in the first wave after every earlier job its tile
// overlaps (z-order) that has no job whose area it shares: tiles of one
// wave are drawn at the same time, so they must not touch the same bytes.
func (c *Compositor) waveFor(j *drawJob) int {
	tile := c.geometry.Tiles[j.tile].Tile
	w := 0
	for k := range c.batch {
		if c.geometry.Tiles[c.batch[k].tile].Tile.Intersects(tile) {
			w = max(w, c.batch[k].wave+1)
		}
	}
	for ; ; w++ {
		free := true
		for k := range c.batch {
			free = free && !(c.batch[k].wave == w && c.batch[k].area.Intersects(j.area))
		}
		if free {
			return w
		}
	}
}

func (c *Compositor) overlapsRedrawn(r layout.Rect) bool {
	for _, o := range c.redrawn {
		if o.Intersects(r) {
			return true
		}
	}
	return false
}

// flush draws the batch on the pool, wave by wave, then accounts for it.
func (c *Compositor) flush() {
	for w := 0; ; w++ {
		c.wave = c.wave[:0]
		for k := range c.batch {
			if c.batch[k].wave == w {
				c.wave = append(c.wave, k)
			}
		}
		if len(c.wave) == 0 {
			break
		}
		c.pool.run(len(c.wave))
	}
	for i := range c.batch {
		j := &c.batch[i]
		t := &c.geometry.Tiles[j.tile]
		switch {
		case j.src == nil:
			c.stats.TilesFilled++
		case j.err != nil:
			// One participant's unusable frame must not take the composite
			// down: it shows the placeholder; say why, once per frame size.
			c.stats.TileErrors++
			if !j.src.failed {
				c.log.Warn("cannot draw participant's frame; showing a placeholder",
					"participant", t.ID, "width", j.src.size.W, "height", j.src.size.H,
					"format", j.src.frame.PixelFormat().String(), "error", j.err)
			}
			j.src.failed = true
		default:
			j.src.failed = false
			c.stats.TilesScaled++
		}
		*j = drawJob{}
	}
	c.batch = c.batch[:0]
}

// runJob draws entry i of the current wave. It runs on any goroutine of the
// pool, at the same time as the wave's other jobs, which draw elsewhere.
func (c *Compositor) runJob(i int) {
	j := &c.batch[c.wave[i]]
	t := &c.geometry.Tiles[j.tile]
	if j.src == nil {
		fillRect(c.canvas, t.Tile, c.placeholder)
		return
	}
	if j.err == nil {
		j.err = c.draw(j, t)
	}
	if j.err != nil {
		fillRect(c.canvas, t.Tile, c.placeholder)
	}
}

// draw scales the tile's crop of the participant's frame into its video
// rectangle, after painting the bars CONTAIN leaves: with libswscale, or
// by copying or box-averaging when the crop is 1, 2 or 3 times the tile.
func (c *Compositor) draw(j *drawJob, t *layout.Tile) error {
	c.fillBars(t)
	src := j.src.frame
	if j.src.conv != nil && !planar420(src) {
		if err := j.src.convScal.convert(src, j.src.conv); err != nil {
			return err
		}
		src = j.src.conv
	}
	if j.box > 0 {
		boxInto(src, j.crop, c.canvas, t.Video.X, t.Video.Y, t.Video.W, t.Video.H, j.box)
		return nil
	}
	return j.sc.scaleInto(src, t.Crop, c.canvas, t.Video.X, t.Video.Y, j.guard)
}

// fillBars paints the parts of a tile its picture does not cover (CONTAIN).
func (c *Compositor) fillBars(t *layout.Tile) {
	if t.Video == t.Tile {
		return
	}
	tl, v := t.Tile, t.Video
	bg := c.cfg.Background
	fillRect(c.canvas, layout.Rect{X: tl.X, Y: tl.Y, W: tl.W, H: v.Y - tl.Y}, bg)
	fillRect(c.canvas, layout.Rect{X: tl.X, Y: v.Y + v.H, W: tl.W, H: tl.Y + tl.H - v.Y - v.H}, bg)
	fillRect(c.canvas, layout.Rect{X: tl.X, Y: v.Y, W: v.X - tl.X, H: v.H}, bg)
	fillRect(c.canvas, layout.Rect{X: v.X + v.W, Y: v.Y, W: tl.X + tl.W - v.X - v.W, H: v.H}, bg)
}

func planar420(f *astiav.Frame) bool {
	switch f.PixelFormat() {
	case astiav.PixelFormatYuv420P, astiav.PixelFormatYuvj420P:
		return true
	}
	return false
}

// prepare readies the conversion of a frame that arrives in another format
// than planar 4:2:0 (NV12, 4:2:2, RGB…): a per-participant I420 buffer and
// scaler, which the draw then fills.
func (c *Compositor) prepare(s *source) error {
	if planar420(s.frame) {
		return nil
	}
	if s.conv == nil {
		s.conv = astiav.AllocFrame()
	}
	if s.conv.Width() != s.size.W || s.conv.Height() != s.size.H {
		s.conv.Unref()
		s.conv.SetWidth(s.size.W)
		s.conv.SetHeight(s.size.H)
		s.conv.SetPixelFormat(astiav.PixelFormatYuv420P)
		if err := s.conv.AllocBuffer(0); err != nil {
			return fmt.Errorf("allocate conversion frame: %w", err)
		}
	}
	k := scalerKey{
		srcW: s.size.W, srcH: s.size.H, srcFmt: s.frame.PixelFormat(),
		dstW: s.size.W, dstH: s.size.H, dstFmt: astiav.PixelFormatYuv420P,
	}
	if s.convScal != nil && s.convScal.key == k {
		return nil
	}
	if s.convScal != nil {
		s.convScal.free()
		s.convScal = nil
	}
	sc, err := newScaler(k)
	if err != nil {
		return err
	}
	s.convScal = sc
	return nil
}

// tileScaler returns tile i's scaler for k: its own, a spare of the previous
// layout with the same sizes, or a new one.
func (c *Compositor) tileScaler(i int, k scalerKey) (*scaler, error) {
	if sc := c.tileScalers[i]; sc != nil && sc.key == k {
		return sc, nil
	}
	if old := c.tileScalers[i]; old != nil {
		c.spare = append(c.spare, old)
		c.tileScalers[i] = nil
	}
	for n, sc := range c.spare {
		if sc.key == k {
			c.spare = append(c.spare[:n], c.spare[n+1:]...)
			c.tileScalers[i] = sc
			return sc, nil
		}
	}
	sc, err := newScaler(k)
	if err != nil {
		return nil, err
	}
	c.tileScalers[i] = sc
	return sc, nil
}

func (c *Compositor) freeSpareScalers() {
	for i, sc := range c.spare {
		sc.free()
		c.spare[i] = nil
	}
	c.spare = c.spare[:0]
}

// union is the smallest rectangle holding a and b.
func union(a, b layout.Rect) layout.Rect {
	x, y := min(a.X, b.X), min(a.Y, b.Y)
	return layout.Rect{X: x, Y: y, W: max(a.X+a.W, b.X+b.W) - x, H: max(a.Y+a.H, b.Y+b.H) - y}
}
