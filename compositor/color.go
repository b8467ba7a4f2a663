package compositor

import (
	"fmt"
	"strconv"
	"strings"
)

// Color is an sRGB colour.
type Color struct{ R, G, B uint8 }

// Named colours used as defaults.
var (
	Black = Color{0, 0, 0}
	White = Color{255, 255, 255}
	// PlaceholderGray fills the tile of a participant without video: dark
	// enough to read as "no picture", distinct from a black background.
	PlaceholderGray = Color{0x2b, 0x2b, 0x2b}
)

// ParseColor reads "#RRGGBB" or "RRGGBB".
func ParseColor(s string) (Color, error) {
	h := strings.TrimPrefix(s, "#")
	if len(h) != 6 {
		return Color{}, fmt.Errorf("colour %q: want #RRGGBB", s)
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return Color{}, fmt.Errorf("colour %q: want #RRGGBB: %w", s, err)
	}
	return Color{uint8(v >> 16), uint8(v >> 8), uint8(v)}, nil
}

func (c Color) String() string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// YUV converts to limited-range BT.601 Y'CbCr, the matrix libswscale and
// libx264 assume for untagged SD and HD content alike.
func (c Color) YUV() (y, u, v uint8) {
	r, g, b := float64(c.R), float64(c.G), float64(c.B)
	y = clamp8(16 + (65.481*r+128.553*g+24.966*b)/255)
	u = clamp8(128 + (-37.797*r-74.203*g+112.0*b)/255)
	v = clamp8(128 + (112.0*r-93.786*g-18.214*b)/255)
	return y, u, v
}

func clamp8(f float64) uint8 {
	f += 0.5
	switch {
	case f < 0:
		return 0
	case f > 255:
		return 255
	}
	return uint8(f)
}
