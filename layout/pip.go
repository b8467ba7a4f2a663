package layout

import "github.com/stagehand-rt/stagehand/internal/validation"

func computePip(canvas Size, ps []Participant, p *PipConfig) (Layout, error) {
	l := Layout{Canvas: canvas, Gap: EffectiveGap(*p.GridGap)}
	// The window's explicit size and offset must fit before anyone joins,
	// whatever the PiP participant's aspect ratio turns out to be.
	if _, err := pipWindow(canvas, Size{}, p, true); err != nil {
		return Layout{}, err
	}
	idx := visible(&l, ps, p.OmitStoppedVideo, p.ParticipantOrderAttribute)
	pip, background := pick(ps, idx, p.PipParticipantAttribute)
	if pip < 0 && len(idx) >= 2 {
		pip, background = idx[len(idx)-1], idx[:len(idx)-1]
	}
	featured, others := pick(ps, background, p.FeaturedParticipantAttribute)
	full := Rect{0, 0, canvas.W, canvas.H}
	if err := placeRegion(&l, ps, full, featured, others, AspectAuto, p.VideoFillMode, p.VideoFillMode,
		"layout.pip.gridGap"); err != nil {
		return Layout{}, err
	}
	if pip < 0 {
		return l, nil
	}
	window, err := pipWindow(canvas, ps[pip].Video, p, false)
	if err != nil {
		return Layout{}, err
	}
	if len(background) == 0 && p.PipBehavior == PipDynamic {
		window = full
	}
	l.Tiles = append(l.Tiles, makeTile(ps, pip, SlotPiP, window, p.VideoFillMode, 1))
	return l, nil
}

// pipWindow places the PiP window in its corner. Explicit pipWidth, pipHeight
// and pipOffset must fit the canvas whatever the participants do, so they are
// checked before anyone joins. Unset dimensions follow the participant's
// aspect ratio (16:9 when unknown) within a quarter of the canvas's width and
// height; one set dimension derives the other, clamped to the canvas. With
// largest, unset dimensions take the largest window any aspect ratio can
// derive, the whole quarter, so that a check passed with largest passes for
// every participant.
func pipWindow(canvas Size, video Size, p *PipConfig, largest bool) (Rect, error) {
	ratio := 16.0 / 9
	if video.W > 0 && video.H > 0 {
		ratio = float64(video.W) / float64(video.H)
	}
	// Odd sizes and offsets round up to even: I420 chroma is subsampled 2x2.
	off := *p.PipOffset
	if off >= min(canvas.W, canvas.H) {
		return Rect{}, validation.Errorf("layout.pip.pipOffset", "%d leaves no room for the PiP window on the %dx%d canvas",
			off, canvas.W, canvas.H)
	}
	off += off & 1
	availW, availH := canvas.W-off, canvas.H-off
	var w, h int
	switch {
	case p.PipWidth != nil && p.PipHeight != nil:
		w, h = *p.PipWidth, *p.PipHeight
	case p.PipWidth != nil:
		w, h = *p.PipWidth, min(availH, evenRound(float64(*p.PipWidth)/ratio))
	case p.PipHeight != nil:
		w, h = min(availW, evenRound(float64(*p.PipHeight)*ratio)), *p.PipHeight
	case largest:
		w, h = even(canvas.W/4), even(canvas.H/4)
	default:
		box := containRect(Size{int(ratio * 1e4), 1e4}, Rect{0, 0, even(canvas.W / 4), even(canvas.H / 4)})
		w, h = box.W, box.H
	}
	// availW and availH are even, so checking before rounding up is the same
	// check, and rounding math.MaxInt up cannot overflow.
	w, h = max(2, w), max(2, h)
	if w > availW || h > availH {
		return Rect{}, validation.Errorf("layout.pip", "PiP window %dx%d at offset %d does not fit the %dx%d canvas",
			w, h, off, canvas.W, canvas.H)
	}
	w, h = w+w&1, h+h&1
	x, y := off, off
	switch p.PipPosition {
	case PipTopRight:
		x = canvas.W - off - w
	case PipBottomLeft:
		y = canvas.H - off - h
	case PipBottomRight:
		x, y = canvas.W-off-w, canvas.H-off-h
	}
	return Rect{x, y, w, h}, nil
}
