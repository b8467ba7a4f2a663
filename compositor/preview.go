package compositor

import (
	"fmt"
	"image"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/layout"
)

// previewPalette gives preview participants distinct, readable colours.
var previewPalette = []Color{
	{0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}, {0xd6, 0x27, 0x28},
	{0x94, 0x67, 0xbd}, {0x8c, 0x56, 0x4b}, {0xe3, 0x77, 0xc2}, {0x7f, 0x7f, 0x7f},
	{0xbc, 0xbd, 0x22}, {0x17, 0xbe, 0xcf}, {0x39, 0x3b, 0x79}, {0x63, 0x79, 0x39},
}

// PreviewParticipant is a synthetic participant for a layout preview.
type PreviewParticipant struct {
	layout.Participant
	Label  string // drawn large in the middle of its picture; defaults to its ID
	Detail string // a smaller line below the label, e.g. its attributes
}

// Preview renders a layout with a solid, labelled picture per participant,
// through the same compositor a composition uses, so what it shows is what a
// composition draws. Participants without a Video size get 1280x720.
func Preview(cfg Config, ps []PreviewParticipant) (*image.RGBA, layout.Layout, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, layout.Layout{}, err
	}
	defer c.Close()
	lps := make([]layout.Participant, len(ps))
	for i, p := range ps {
		lps[i] = p.Participant
	}
	c.SetParticipants(lps)
	for i, p := range ps {
		if err := feedPreviewFrame(c, i, p); err != nil {
			return nil, layout.Layout{}, err
		}
	}
	out, err := c.Render()
	if err != nil {
		return nil, layout.Layout{}, err
	}
	img, err := ToImage(out)
	return img, c.Layout(), err
}

func feedPreviewFrame(c *Compositor, i int, p PreviewParticipant) error {
	size := p.Video
	if size.W < 2 || size.H < 2 {
		size = layout.Size{W: 1280, H: 720}
	}
	f, err := NewFrame(size, previewPalette[i%len(previewPalette)])
	if err != nil {
		return err
	}
	defer f.Free()
	drawPreviewLabel(f, size, p)
	if err := c.UpdateFrame(p.ID, f); err != nil {
		return fmt.Errorf("preview participant %s: %w", p.ID, err)
	}
	return nil
}

// drawPreviewLabel writes the label large in the middle and the detail line
// (attributes, frame size) below it, each fitted to 80% of the frame's width,
// and outlines the frame so crops and letterboxes show.
func drawPreviewLabel(f *astiav.Frame, size layout.Size, p PreviewParticipant) {
	label := p.Label
	if label == "" {
		label = p.ID
	}
	detail := fmt.Sprintf("%dx%d", size.W, size.H)
	if p.Detail != "" {
		detail = p.Detail + "  " + detail
	}
	fit := func(text string, maxScale int) int {
		return max(2, min(maxScale, size.W*8/10/max(1, LabelSize(text, 1).W)))
	}
	scale := fit(label, size.H/60)
	ls := LabelSize(label, scale)
	DrawLabel(f, (size.W-ls.W)/2, (size.H-ls.H)/2, scale, label, White)
	dscale := fit(detail, scale/2)
	ds := LabelSize(detail, dscale)
	DrawLabel(f, (size.W-ds.W)/2, (size.H+ls.H)/2+dscale*2, dscale, detail, White)
	b := max(2, min(size.W, size.H)/120&^1)
	w, h := size.W&^1, size.H&^1
	for _, r := range []layout.Rect{{W: w, H: b}, {Y: h - b, W: w, H: b}, {W: b, H: h}, {X: w - b, W: b, H: h}} {
		FillRect(f, r, White)
	}
}
