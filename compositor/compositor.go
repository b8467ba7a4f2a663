// Package compositor owns the picture and the sound of a composition. The
// Compositor holds the I420 canvas the encoder reads and the latest decoded
// frame of each participant, and draws those frames into the tiles the
// layout package computes; the Mixer sums the participants' audio into
// 48 kHz stereo. Preview draws a layout with labelled stand-ins for the
// participants, through the same Compositor (stagehand layout preview).
//
// Drawing scales each participant's frame with libswscale straight into its
// tile of the canvas (the crop of COVER is a pointer offset into the source,
// so nothing is copied), fills gaps, letterbox bars and placeholders with
// their colours, and draws in z-order so the PiP window lands on top. A
// frame that is 1, 2 or 3 times its tile's size, give or take 2 pixels an
// edge (a simulcast layer picked for the tile, 720p into a 9-up 1080p grid,
// 1080p into a 4-up or 9-up one), is copied or box-averaged instead, for a
// fraction of libswscale's cost (Config.ExactScaling turns that off).
// Each tile keeps its own scaler context; a tile whose frame did not change
// since the last render is not scaled again, unless something drawn below it
// was. Tiles that do not overlap are drawn in parallel on a small pool of
// goroutines the compositor owns (Config.Workers), which Close ends. In
// steady state a render allocates nothing.
//
// The mixer queues a bounded stretch of each participant's audio, fills
// what a participant has not delivered with silence and soft-clips the sum.
//
// The package does not own a clock, decoders or an encoder: callers feed
// frames (UpdateFrame, Mixer.Push) from their decoders and call Render and
// Mixer.Mix on their output clock.
package compositor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
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
	// ExactScaling scales every tile with libswscale's area filter. By
	// default a tile whose crop is 1, 2 or 3 times its size, give or take a
	// few pixels, is copied or box-averaged (2x2 or 3x3) instead, at a
	// fraction of the cost, after cutting the crop to the exact multiple
	// (at most 2 pixels of each edge; see boxCrop).
	ExactScaling bool
	// Workers is how many goroutines, the rendering one included, scale a
	// render's tiles in parallel; 0 picks DefaultWorkers, 1 draws serially.
	Workers int
	// Logger receives tiles that cannot be drawn, with component=compositor
	// added; default slog.Default(). Pass one carrying the composition's id.
	Logger *slog.Logger
}

// DefaultWorkers scales tiles on as many goroutines as Go runs at once, up
// to four: past that the canvas's memory bandwidth, not the cores, limits.
func DefaultWorkers() int { return min(runtime.GOMAXPROCS(0), 4) }

func (c Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return DefaultWorkers()
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
	frame    *astiav.Frame // a reference to the latest decoded frame; empty until one arrives
	conv     *astiav.Frame // the frame converted to I420 when it arrives in another format
	convScal *scaler       // the conversion's scaler
	has      bool          // frame holds a picture
	gen      uint64        // bumped on every new frame
	size     layout.Size   // size of the frame held
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
	log         *slog.Logger
	placeholder Color
	canvas      *astiav.Frame

	participants []layout.Participant // arrival order
	sources      map[string]*source

	geometry layout.Layout
	dirty    bool    // participants or frame sizes changed: recompute the layout
	drawn    []drawn // parallel to geometry.Tiles
	redrawn  []layout.Rect

	// Drawing: a batch of tile draws that touch disjoint parts of the
	// canvas runs on the pool; tileScalers[i] is tile i's scaler (scaler
	// contexts are not safe for concurrent use, so tiles never share one).
	pool        *tilePool
	batch       []drawJob
	wave        []int // indices into batch of the wave being drawn
	guards      [][]byte
	tileScalers []*scaler
	spare       []*scaler // scalers of the previous layout, until reused or freed

	stats  Stats
	closed bool
}

// New allocates a compositor and its canvas, painted with the background.
func New(cfg Config) (*Compositor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("compositor config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Compositor{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "compositor"),
		placeholder: PlaceholderGray,
		sources:     map[string]*source{},
		dirty:       true,
		batch:       make([]drawJob, 0, layout.MaxTiles+1),
		wave:        make([]int, 0, layout.MaxTiles+1),
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
	c.pool = startTilePool(cfg.workers(), c.runJob)
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
	c.pool.close()
	for _, sc := range c.tileScalers {
		if sc != nil {
			sc.free()
		}
	}
	c.tileScalers = nil
	c.freeSpareScalers()
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
		return nil, errors.New("compositor closed")
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
		c.planTile(i, full)
	}
	c.flush()
	if full {
		c.freeSpareScalers()
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
		return fmt.Errorf("compute layout: %w", err)
	}
	c.geometry, c.dirty = g, false
	c.stats.Relayouts++
	c.drawn = slices.Grow(c.drawn[:0], len(g.Tiles))[:len(g.Tiles)]
	clear(c.drawn)
	fillRect(c.canvas, layout.Rect{W: c.cfg.Canvas.W, H: c.cfg.Canvas.H}, c.cfg.Background)
	// The tiles' scalers become spares: the new tiles take those whose sizes
	// they share, and the render frees the rest.
	for i, sc := range c.tileScalers {
		if sc != nil {
			c.spare = append(c.spare, sc)
		}
		c.tileScalers[i] = nil
	}
	c.tileScalers = slices.Grow(c.tileScalers[:0], len(g.Tiles))[:len(g.Tiles)]
	return nil
}

func (s *source) free() {
	s.frame.Free()
	if s.conv != nil {
		s.conv.Free()
	}
	if s.convScal != nil {
		s.convScal.free()
	}
}
