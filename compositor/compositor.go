// Package compositor owns the frame buffer of a composition: the I420 canvas
// the encoder reads, the latest decoded frame of each participant, and the
// drawing of those frames into the tiles the layout package computes.
//
// Drawing scales each participant's frame with libswscale straight into its
// tile of the canvas (the crop of COVER is a pointer offset into the source,
// so nothing is copied), fills gaps, letterbox bars and placeholders with
// their colours, and draws in z-order so the PiP window lands on top.
// Scaler contexts are cached per source and tile size; a tile whose frame did
// not change since the last render is not scaled again, unless something
// drawn below it was. In steady state a render allocates nothing.
//
// The compositor does not own a clock, decoders or an encoder: callers feed
// frames (UpdateFrame) from their decoders and call Render on their output
// clock.
package compositor

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/layout"
)

// Config configures a compositor.
type Config struct {
	Canvas      layout.Size   // the output size: even, at least 2x2
	Layout      layout.Config // IVS grid or PiP configuration
	Background  Color         // gaps, letterbox bars and empty canvas; default black
	Placeholder *Color        // tiles of participants without video; default PlaceholderGray
	// RedrawAll scales every tile on every render, even when its frame did
	// not change. For benchmarks and debugging.
	RedrawAll bool
}

// Validate checks the configuration before anything is allocated.
func (c Config) Validate() error {
	_, err := layout.Compute(c.Canvas, nil, c.Layout)
	return err
}

// ErrUnknownParticipant is returned for a frame of a participant the
// compositor was not told about.
var ErrUnknownParticipant = errors.New("unknown participant")

// Stats counts what renders did.
type Stats struct {
	Renders      uint64 // calls to Render
	Relayouts    uint64 // renders that recomputed the layout and redrew everything
	TilesScaled  uint64 // tiles scaled from a frame
	TilesSkipped uint64 // tiles left as they were because nothing changed
	TilesFilled  uint64 // placeholder tiles painted
	TileErrors   uint64 // frames that could not be drawn and got a placeholder instead
}

// source is one participant's latest frame.
type source struct {
	frame *astiav.Frame // a reference to the latest decoded frame; empty until one arrives
	conv  *astiav.Frame // the frame converted to I420 when it arrives in another format
	has   bool          // frame holds a picture
	gen   uint64        // bumped on every new frame
	size  layout.Size   // size of the frame held
	// failed is set while the frames of this size cannot be drawn, so the
	// reason is logged once, not on every render.
	failed bool
}

// drawn remembers what was drawn for one tile of the current layout.
type drawn struct {
	gen   uint64
	valid bool
}

// Compositor draws participants' frames into a canvas. It is safe for
// concurrent use: decoders call UpdateFrame while the output clock calls Render.
type Compositor struct {
	mu          sync.Mutex
	cfg         Config
	placeholder Color
	canvas      *astiav.Frame

	participants []layout.Participant // arrival order
	sources      map[string]*source

	geometry layout.Layout
	dirty    bool    // participants or frame sizes changed: recompute the layout
	drawn    []drawn // parallel to geometry.Tiles
	redrawn  []layout.Rect
	scalers  map[scalerKey]*scaler
	stats    Stats
	closed   bool
}

// New allocates a compositor and its canvas, painted with the background.
func New(cfg Config) (*Compositor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("compositor config: %w", err)
	}
	c := &Compositor{
		cfg:         cfg,
		placeholder: PlaceholderGray,
		sources:     map[string]*source{},
		scalers:     map[scalerKey]*scaler{},
		dirty:       true,
	}
	if cfg.Placeholder != nil {
		c.placeholder = *cfg.Placeholder
	}
	c.canvas = astiav.AllocFrame()
	c.canvas.SetWidth(cfg.Canvas.W)
	c.canvas.SetHeight(cfg.Canvas.H)
	c.canvas.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := c.canvas.AllocBuffer(0); err != nil {
		c.canvas.Free()
		return nil, fmt.Errorf("allocate %dx%d canvas: %w", cfg.Canvas.W, cfg.Canvas.H, err)
	}
	fillRect(c.canvas, layout.Rect{W: cfg.Canvas.W, H: cfg.Canvas.H}, cfg.Background)
	return c, nil
}

// Close frees the canvas, every held frame and every scaler.
func (c *Compositor) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for id, s := range c.sources {
		s.free()
		delete(c.sources, id)
	}
	for k, s := range c.scalers {
		s.free()
		delete(c.scalers, k)
	}
	c.canvas.Free()
}

// SetParticipants replaces the stage's participants, in arrival order. Their
// Video sizes are taken from the frames the compositor holds, not from ps.
// The frames of participants who left are released.
func (c *Compositor) SetParticipants(ps []layout.Participant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.participants = append(c.participants[:0], ps...)
	present := make(map[string]bool, len(ps))
	for _, p := range ps {
		present[p.ID] = true
		if c.sources[p.ID] == nil {
			c.sources[p.ID] = &source{frame: astiav.AllocFrame()}
		}
	}
	for id, s := range c.sources {
		if !present[id] {
			s.free()
			delete(c.sources, id)
		}
	}
	c.dirty = true
}

// UpdateFrame makes f the latest frame of participant id. The compositor
// takes its own reference: the caller keeps ownership of f and may unref or
// reuse it at once.
func (c *Compositor) UpdateFrame(id string, f *astiav.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sources[id]
	if s == nil || c.closed {
		return fmt.Errorf("frame for %q: %w", id, ErrUnknownParticipant)
	}
	s.frame.Unref()
	if err := s.frame.Ref(f); err != nil {
		s.has = false
		return fmt.Errorf("reference frame of %q: %w", id, err)
	}
	size := layout.Size{W: f.Width(), H: f.Height()}
	if !s.has || size != s.size {
		c.dirty = true
		s.failed = false
	}
	s.has, s.size = true, size
	s.gen++
	return nil
}

// Layout returns the geometry of the last render.
func (c *Compositor) Layout() layout.Layout {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.geometry
}

// Stats returns counters of what renders did.
func (c *Compositor) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Render draws the current frames into the canvas and returns it. The canvas
// belongs to the compositor and stays valid until the next Render or Close;
// an encoder that keeps it must take its own reference, and the next Render
// then draws into a fresh buffer rather than under the encoder's feet.
func (c *Compositor) Render() (*astiav.Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("render: compositor closed")
	}
	if err := makeWritable(c.canvas); err != nil {
		return nil, err
	}
	c.stats.Renders++
	full := c.dirty
	if c.dirty {
		if err := c.relayout(); err != nil {
			return nil, err
		}
	}
	c.redrawn = c.redrawn[:0]
	for i := range c.geometry.Tiles {
		c.drawTile(i, full)
	}
	return c.canvas, nil
}

// relayout recomputes the geometry, repaints the canvas with the background
// and releases scalers the new geometry does not use.
func (c *Compositor) relayout() error {
	for i := range c.participants {
		p := &c.participants[i]
		p.Video = layout.Size{}
		if s := c.sources[p.ID]; s != nil && s.has {
			p.Video = s.size
		}
	}
	g, err := layout.Compute(c.cfg.Canvas, c.participants, c.cfg.Layout)
	if err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	c.geometry, c.dirty = g, false
	c.stats.Relayouts++
	c.drawn = slices.Grow(c.drawn[:0], len(g.Tiles))[:len(g.Tiles)]
	clear(c.drawn)
	fillRect(c.canvas, layout.Rect{W: c.cfg.Canvas.W, H: c.cfg.Canvas.H}, c.cfg.Background)
	for k, s := range c.scalers {
		if !s.used {
			s.free()
			delete(c.scalers, k)
		}
		s.used = false
	}
	return nil
}

// drawTile draws tile i if its frame changed, if the canvas was repainted, or
// if a tile drawn earlier in this render (lower in z-order) overlapped it.
func (c *Compositor) drawTile(i int, full bool) {
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
	if !live {
		fillRect(c.canvas, t.Tile, c.placeholder)
		*d = drawn{valid: true}
		c.stats.TilesFilled++
		return
	}
	c.fillBars(t)
	if err := c.scale(s, t); err != nil {
		// One participant's unusable frame must not take the composite
		// down: show the placeholder and say why, once per frame size.
		fillRect(c.canvas, t.Tile, c.placeholder)
		c.stats.TileErrors++
		if !s.failed {
			slog.Warn("cannot draw participant's frame; showing a placeholder", "component", "compositor",
				"participant", t.ID, "width", s.size.W, "height", s.size.H, "format", s.frame.PixelFormat().String(), "error", err)
		}
		s.failed = true
		*d = drawn{gen: s.gen, valid: true}
		return
	}
	s.failed = false
	*d = drawn{gen: s.gen, valid: true}
	c.stats.TilesScaled++
}

func (c *Compositor) overlapsRedrawn(r layout.Rect) bool {
	for _, o := range c.redrawn {
		if o.Intersects(r) {
			return true
		}
	}
	return false
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

// scale draws the tile's crop of the participant's frame into its video rectangle.
func (c *Compositor) scale(s *source, t *layout.Tile) error {
	src, err := c.planar420(s)
	if err != nil {
		return err
	}
	sc, err := c.scalerFor(scalerKey{
		srcW: t.Crop.W, srcH: t.Crop.H, srcFmt: astiav.PixelFormatYuv420P,
		dstW: t.Video.W, dstH: t.Video.H, dstFmt: astiav.PixelFormatYuv420P,
	})
	if err != nil {
		return err
	}
	return sc.scaleInto(src, t.Crop, c.canvas, t.Video.X, t.Video.Y)
}

// planar420 returns the source frame as planar 4:2:0, converting frames that
// arrive in another format (NV12, 4:2:2, RGB…) into a per-participant frame.
func (c *Compositor) planar420(s *source) (*astiav.Frame, error) {
	switch s.frame.PixelFormat() {
	case astiav.PixelFormatYuv420P, astiav.PixelFormatYuvj420P:
		return s.frame, nil
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
			return nil, fmt.Errorf("allocate conversion frame: %w", err)
		}
	}
	sc, err := c.scalerFor(scalerKey{
		srcW: s.size.W, srcH: s.size.H, srcFmt: s.frame.PixelFormat(),
		dstW: s.size.W, dstH: s.size.H, dstFmt: astiav.PixelFormatYuv420P,
	})
	if err != nil {
		return nil, err
	}
	return s.conv, sc.convert(s.frame, s.conv)
}

func (c *Compositor) scalerFor(k scalerKey) (*scaler, error) {
	s := c.scalers[k]
	if s == nil {
		var err error
		if s, err = newScaler(k); err != nil {
			return nil, err
		}
		c.scalers[k] = s
	}
	s.used = true
	return s, nil
}

func (s *source) free() {
	s.frame.Free()
	if s.conv != nil {
		s.conv.Free()
	}
}
