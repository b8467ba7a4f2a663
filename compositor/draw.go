package compositor

import (
	"fmt"
	"image"

	"github.com/asticode/go-astiav"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/stagehand-rt/stagehand/layout"
)

// NewFrame allocates an I420 frame of the given size painted with c. The
// caller owns it and must Free it.
func NewFrame(size layout.Size, c Color) (*astiav.Frame, error) {
	f := astiav.AllocFrame()
	f.SetWidth(size.W)
	f.SetHeight(size.H)
	f.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := f.AllocBuffer(0); err != nil {
		f.Free()
		return nil, fmt.Errorf("allocate %dx%d frame: %w", size.W, size.H, err)
	}
	FillRect(f, layout.Rect{W: size.W &^ 1, H: size.H &^ 1}, c)
	return f, nil
}

// FillRect paints r of an I420 frame with c. r must be even-aligned and
// inside the frame.
func FillRect(f *astiav.Frame, r layout.Rect, c Color) {
	fillRect(f, r, c)
}

// DrawLabel writes text into an I420 frame with its top-left corner at
// (x, y), each font pixel drawn as a scale x scale block (scale is rounded up
// to even). Glyphs that would fall outside the frame are clipped.
func DrawLabel(f *astiav.Frame, x, y, scale int, text string, c Color) {
	scale += scale & 1
	face := basicfont.Face7x13
	w := font.MeasureString(face, text).Ceil()
	h := face.Metrics().Height.Ceil()
	mask := image.NewAlpha(image.Rect(0, 0, w, h))
	d := font.Drawer{Dst: mask, Src: image.Opaque, Face: face, Dot: fixed.P(0, face.Metrics().Ascent.Ceil())}
	d.DrawString(text)
	x, y = x&^1, y&^1
	for py := 0; py < h; py++ {
		for px := 0; px < w; px++ {
			if mask.AlphaAt(px, py).A < 128 {
				continue
			}
			r := layout.Rect{X: x + px*scale, Y: y + py*scale, W: scale, H: scale}
			if r.X >= 0 && r.Y >= 0 && r.X+r.W <= f.Width() && r.Y+r.H <= f.Height() {
				fillRect(f, r, c)
			}
		}
	}
}

// LabelSize is the size DrawLabel covers for text at scale.
func LabelSize(text string, scale int) layout.Size {
	scale += scale & 1
	face := basicfont.Face7x13
	return layout.Size{W: font.MeasureString(face, text).Ceil() * scale, H: face.Metrics().Height.Ceil() * scale}
}

// ToImage converts a frame to RGBA with libswscale, for PNG previews and
// tests that look at colours.
func ToImage(f *astiav.Frame) (*image.RGBA, error) {
	w, h := f.Width(), f.Height()
	rgba := astiav.AllocFrame()
	defer rgba.Free()
	rgba.SetWidth(w)
	rgba.SetHeight(h)
	rgba.SetPixelFormat(astiav.PixelFormatRgba)
	if err := rgba.AllocBuffer(0); err != nil {
		return nil, fmt.Errorf("allocate rgba frame: %w", err)
	}
	sc, err := newScaler(scalerKey{srcW: w, srcH: h, srcFmt: f.PixelFormat(),
		dstW: w, dstH: h, dstFmt: astiav.PixelFormatRgba})
	if err != nil {
		return nil, err
	}
	defer sc.free()
	if err := sc.convert(f, rgba); err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	src := plane(rgba, 0)
	stride := rgba.Linesize()[0]
	for row := 0; row < h; row++ {
		copy(img.Pix[row*img.Stride:row*img.Stride+4*w], src[row*stride:])
	}
	return img, nil
}
