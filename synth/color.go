package synth

/*
#cgo pkg-config: libavutil
#include <libavutil/parseutils.h>
*/
import "C"

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// RGB is a colour with 8 bits per channel.
type RGB struct{ R, G, B uint8 }

// String formats c the way FFmpeg's colour options read it.
func (c RGB) String() string { return fmt.Sprintf("0x%02X%02X%02X", c.R, c.G, c.B) }

// knownColors is FFmpeg's table of colour names (the CSS/X11 names),
// lower-cased. It is read once from libavutil rather than by handing the
// string to av_parse_color, which logs every miss and also accepts forms
// ("random", "red@0.5") that a background colour has no use for.
var knownColors = sync.OnceValue(func() map[string]RGB {
	m := make(map[string]RGB, 140)
	for i := 0; ; i++ {
		var rgb *C.uint8_t
		name := C.av_get_known_color_name(C.int(i), &rgb)
		if name == nil {
			return m
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(rgb)), 3)
		m[strings.ToLower(C.GoString(name))] = RGB{b[0], b[1], b[2]}
	}
})

// parseColor reads a colour name FFmpeg knows or "#RRGGBB" / "0xRRGGBB".
func parseColor(s string) (RGB, error) {
	hex, ok := strings.CutPrefix(s, "#")
	if !ok {
		hex, ok = strings.CutPrefix(strings.ToLower(s), "0x")
	}
	if ok {
		v, err := strconv.ParseUint(hex, 16, 32)
		if len(hex) != 6 || err != nil {
			return RGB{}, fmt.Errorf("%q is not #RRGGBB or 0xRRGGBB", s)
		}
		return RGB{uint8(v >> 16), uint8(v >> 8), uint8(v)}, nil
	}
	if c, ok := knownColors()[strings.ToLower(s)]; ok {
		return c, nil
	}
	return RGB{}, fmt.Errorf("unknown colour %q; use a CSS colour name or #RRGGBB", s)
}
