package compositor

/*
#cgo pkg-config: libswscale libavutil
#include <string.h>
#include <libswscale/swscale.h>
#include <libavutil/frame.h>

// scale_rect scales the (cx, cy) crop of src, whose size is the context's
// source size, into the dw x dh rectangle of dst at (dx, dy). Both frames are
// planar 4:2:0 and every offset is even, so the chroma offsets are exact
// halves: nothing is copied, the scaler reads and writes in place.
//
// libswscale's x86 output loops store whole SIMD words: they write each
// row's pixels rounded up to a multiple of 8, past the rectangle into the
// gap or the neighbouring tile. Those bytes are saved into save before the
// scale and put back after it (over_y luma, over_c chroma bytes a row; save
// holds dh*over_y + dh*over_c bytes), so a tile never touches its surroundings.
static int scale_rect(struct SwsContext *ctx, const AVFrame *src, int cx, int cy, int ch,
                      AVFrame *dst, int dx, int dy, int dw, int dh, int over_y, int over_c, uint8_t *save) {
	const uint8_t *s[4] = {0};
	uint8_t *d[4] = {0};
	int sl[4] = {0}, dl[4] = {0};
	for (int i = 0; i < 3; i++) {
		int sh = i ? 1 : 0;
		s[i] = src->data[i] + (cy >> sh) * src->linesize[i] + (cx >> sh);
		d[i] = dst->data[i] + (dy >> sh) * dst->linesize[i] + (dx >> sh);
		sl[i] = src->linesize[i];
		dl[i] = dst->linesize[i];
	}
	uint8_t *p = save;
	for (int i = 0; i < 3; i++) {
		int sh = i ? 1 : 0, over = i ? over_c : over_y;
		for (int r = 0; over && r < dh >> sh; r++, p += over)
			memcpy(p, d[i] + r * dl[i] + (dw >> sh), over);
	}
	int ret = sws_scale(ctx, s, sl, 0, ch, d, dl);
	p = save;
	for (int i = 0; i < 3; i++) {
		int sh = i ? 1 : 0, over = i ? over_c : over_y;
		for (int r = 0; over && r < dh >> sh; r++, p += over)
			memcpy(d[i] + r * dl[i] + (dw >> sh), p, over);
	}
	return ret;
}

// fill_rect paints an even-aligned rectangle of a planar 4:2:0 frame.
static void fill_rect(AVFrame *f, int x, int y, int w, int h, uint8_t Y, uint8_t U, uint8_t V) {
	for (int r = 0; r < h; r++)
		memset(f->data[0] + (y + r) * f->linesize[0] + x, Y, w);
	for (int r = 0; r < h / 2; r++) {
		memset(f->data[1] + (y / 2 + r) * f->linesize[1] + x / 2, U, w / 2);
		memset(f->data[2] + (y / 2 + r) * f->linesize[2] + x / 2, V, w / 2);
	}
}

// convert_frame scales a whole frame into another, in their own formats.
static int convert_frame(struct SwsContext *ctx, const AVFrame *src, AVFrame *dst) {
	return sws_scale(ctx, (const uint8_t * const *)src->data, src->linesize, 0, src->height,
	                 dst->data, dst->linesize);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/avframe"
	"github.com/stagehand-rt/stagehand/layout"
)

// scaleFlags picks the area filter: when downscaling (every grid of two or
// more from 720p sources) it averages the source pixels each output pixel
// covers, so it does not alias, and it has fewer taps than bilinear (which
// libswscale widens by the ratio): per 720p source, measured in thread CPU
// time, 0.48 ms into a 4-up 1080p tile (bilinear 0.52), 0.32 ms into a 9-up
// tile (0.46), 0.21 ms into a 12-up tile (0.31). When upscaling libswscale
// makes it bilinear.
const scaleFlags = C.SWS_AREA

func cFrame(f *astiav.Frame) *C.AVFrame { return (*C.AVFrame)(f.UnsafePointer()) }

// scaler is a cached libswscale context for one source and destination size.
type scaler struct {
	ctx *C.struct_SwsContext
	key scalerKey
}

type scalerKey struct {
	srcW, srcH int
	srcFmt     astiav.PixelFormat
	dstW, dstH int
	dstFmt     astiav.PixelFormat
}

func newScaler(k scalerKey) (*scaler, error) {
	ctx := C.sws_getContext(C.int(k.srcW), C.int(k.srcH), C.enum_AVPixelFormat(k.srcFmt),
		C.int(k.dstW), C.int(k.dstH), C.enum_AVPixelFormat(k.dstFmt), scaleFlags, nil, nil, nil)
	if ctx == nil {
		return nil, fmt.Errorf("swscale context %dx%d %s -> %dx%d %s: unsupported",
			k.srcW, k.srcH, k.srcFmt, k.dstW, k.dstH, k.dstFmt)
	}
	return &scaler{ctx: ctx, key: k}, nil
}

func (s *scaler) free() {
	C.sws_freeContext(s.ctx)
	s.ctx = nil
}

// overrun is how many bytes past a row of w pixels libswscale writes:
// rows are rounded up to a multiple of 8 (measured; luma and chroma).
func overrun(w int) int { return (8 - w%8) % 8 }

// guard is the scratch space scaleInto needs for a tile of the scaler's
// destination size: the bytes its rows overrun, saved and put back.
func (s *scaler) guard() int {
	return s.key.dstH*overrun(s.key.dstW) + s.key.dstH/2*overrun(s.key.dstW/2)*2
}

// scaleInto draws crop of src (planar 4:2:0) into dst (planar 4:2:0) at the
// scaler's destination size, top-left at (dx, dy), and nowhere else; save
// holds at least guard() bytes.
func (s *scaler) scaleInto(src *astiav.Frame, crop layout.Rect, dst *astiav.Frame, dx, dy int, save []byte) error {
	w, h := s.key.dstW, s.key.dstH
	if len(save) < s.guard() {
		return fmt.Errorf("swscale into %dx%d: guard buffer of %d bytes, want %d", w, h, len(save), s.guard())
	}
	var p *C.uint8_t
	if len(save) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&save[0]))
	}
	if r := C.scale_rect(s.ctx, cFrame(src), C.int(crop.X), C.int(crop.Y), C.int(crop.H),
		cFrame(dst), C.int(dx), C.int(dy), C.int(w), C.int(h), C.int(overrun(w)), C.int(overrun(w/2)), p); r <= 0 {
		return fmt.Errorf("swscale into %dx%d+%d+%d: %w", w, h, dx, dy, astiavError(int(r)))
	}
	return nil
}

// convert scales the whole of src into dst.
func (s *scaler) convert(src, dst *astiav.Frame) error {
	if r := C.convert_frame(s.ctx, cFrame(src), cFrame(dst)); r <= 0 {
		return fmt.Errorf("swscale convert %s -> %s: %w", src.PixelFormat(), dst.PixelFormat(), astiavError(int(r)))
	}
	return nil
}

func astiavError(code int) error {
	if code == 0 {
		return errors.New("no output lines")
	}
	return astiav.Error(code)
}

// fillRect paints r of a planar 4:2:0 frame with c.
func fillRect(f *astiav.Frame, r layout.Rect, c Color) {
	if r.Empty() {
		return
	}
	y, u, v := c.YUV()
	C.fill_rect(cFrame(f), C.int(r.X), C.int(r.Y), C.int(r.W), C.int(r.H), C.uint8_t(y), C.uint8_t(u), C.uint8_t(v))
}

// makeWritable gives f a buffer of its own if anyone else (an encoder) still
// holds a reference to the current one; it is free when nobody does.
func makeWritable(f *astiav.Frame) error {
	if r := C.av_frame_make_writable(cFrame(f)); r < 0 {
		return fmt.Errorf("make canvas writable: %w", astiav.Error(int(r)))
	}
	return nil
}

// plane exposes plane i of a frame as a Go slice over its C memory.
func plane(f *astiav.Frame, i int) []byte {
	p, _ := avframe.VideoPlane(f, i)
	return p
}
