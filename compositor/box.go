package compositor

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <string.h>
#include <libavutil/frame.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// box_row2 writes w pixels, each the rounded mean of a 2x2 block of rows a
// and b (2w pixels each).
static void box_row2(uint8_t *d, const uint8_t *a, const uint8_t *b, int w) {
	int x = 0;
#if defined(__SSE2__)
	const __m128i lo = _mm_set1_epi16(0x00ff), two = _mm_set1_epi16(2);
	for (; x + 16 <= w; x += 16) {
		__m128i a0 = _mm_loadu_si128((const __m128i *)(a + 2 * x));
		__m128i a1 = _mm_loadu_si128((const __m128i *)(a + 2 * x + 16));
		__m128i b0 = _mm_loadu_si128((const __m128i *)(b + 2 * x));
		__m128i b1 = _mm_loadu_si128((const __m128i *)(b + 2 * x + 16));
		__m128i s0 = _mm_add_epi16(_mm_add_epi16(_mm_and_si128(a0, lo), _mm_srli_epi16(a0, 8)),
		                           _mm_add_epi16(_mm_and_si128(b0, lo), _mm_srli_epi16(b0, 8)));
		__m128i s1 = _mm_add_epi16(_mm_add_epi16(_mm_and_si128(a1, lo), _mm_srli_epi16(a1, 8)),
		                           _mm_add_epi16(_mm_and_si128(b1, lo), _mm_srli_epi16(b1, 8)));
		s0 = _mm_srli_epi16(_mm_add_epi16(s0, two), 2);
		s1 = _mm_srli_epi16(_mm_add_epi16(s1, two), 2);
		_mm_storeu_si128((__m128i *)(d + x), _mm_packus_epi16(s0, s1));
	}
#endif
	for (; x < w; x++)
		d[x] = (a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1] + 2) >> 2;
}

// box_row3 writes w pixels, each the rounded mean of a 3x3 block of rows a,
// b and c (3w pixels each). A chunk at a time, the rows are summed, then
// each run of three sums, both of which vectorise; every third run is a
// block, divided by 9 as a multiply ((s + 4) * 7282 >> 16 equals
// (s + 4) / 9 for every sum of nine bytes). Built for AVX2 as well where
// GCC can pick at run time (about 1.6 times faster than SSE2 here).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx2", "default")))
#endif
static void box_row3(uint8_t *d, const uint8_t *a, const uint8_t *b, const uint8_t *c, int w) {
	uint16_t v[3 * 256 + 2];
	for (int x0 = 0; x0 < w; x0 += 256) {
		int n = w - x0 < 256 ? w - x0 : 256;
		const uint8_t *pa = a + 3 * x0, *pb = b + 3 * x0, *pc = c + 3 * x0;
		for (int i = 0; i < 3 * n; i++)
			v[i] = pa[i] + pb[i] + pc[i];
		v[3 * n] = v[3 * n + 1] = 0;
		for (int i = 0; i < 3 * n; i++)
			v[i] = v[i] + v[i + 1] + v[i + 2];
		for (int x = 0; x < n; x++)
			d[x0 + x] = ((uint32_t)(v[3 * x] + 4) * 7282) >> 16;
	}
}

// box_rect draws the (cx, cy) crop of src, k times the dw x dh rectangle of
// dst at (dx, dy), into that rectangle: k = 1 copies it, k = 2 and 3 average
// each k x k block. Both frames are planar 4:2:0 and every offset and size
// is even. It writes the rectangle's bytes and no others.
static void box_rect(const AVFrame *src, int cx, int cy, AVFrame *dst, int dx, int dy, int dw, int dh, int k) {
	for (int i = 0; i < 3; i++) {
		int sh = i ? 1 : 0, w = dw >> sh, h = dh >> sh;
		int sl = src->linesize[i], dl = dst->linesize[i];
		const uint8_t *s = src->data[i] + (cy >> sh) * sl + (cx >> sh);
		uint8_t *d = dst->data[i] + (dy >> sh) * dl + (dx >> sh);
		for (int r = 0; r < h; r++, d += dl, s += k * sl) {
			switch (k) {
			case 1: memcpy(d, s, w); break;
			case 2: box_row2(d, s, s + sl, w); break;
			case 3: box_row3(d, s, s + sl, s + 2 * sl, w); break;
			}
		}
	}
}
*/
import "C"

import (
	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/layout"
)

// maxBox is the largest block boxCrop averages: 1/2 and 1/3 are the
// downscales a grid of 4 or 9 tiles asks of 720p and 1080p participants.
const maxBox = 3

// boxCrop says whether a tile of size dst can be drawn from crop without
// libswscale: when crop is k times dst for k of 1 (a copy), 2 or 3 (the mean
// of each k x k block), give or take a little. A crop larger than k times
// the tile by at most 4 tile pixels on an axis, and 1 % of it, is cut to the
// exact multiple, centred: that drops at most 2 pixels of each edge (as
// COVER crops do), where libswscale would squeeze the picture by as much
// instead. Everything must be even, for 4:2:0 chroma; the crop is returned
// with an even offset. A crop smaller than the multiple, which would need an
// upscale, has no box.
func boxCrop(crop layout.Rect, dst layout.Size) (k int, c layout.Rect, ok bool) {
	if dst.W <= 0 || dst.H <= 0 || (crop.X|crop.Y|crop.W|crop.H|dst.W|dst.H)&1 != 0 {
		return 0, layout.Rect{}, false
	}
	for k := 1; k <= maxBox; k++ {
		exW, exH := crop.W-k*dst.W, crop.H-k*dst.H
		if exW < 0 || exH < 0 || exW > k*slack(dst.W) || exH > k*slack(dst.H) {
			continue
		}
		return k, layout.Rect{X: crop.X + exW/2&^1, Y: crop.Y + exH/2&^1, W: k * dst.W, H: k * dst.H}, true
	}
	return 0, layout.Rect{}, false
}

// slack is how many pixels a tile n pixels long may lose to boxCrop's cut:
// at most 4 and 1 %.
func slack(n int) int { return min(4, n/100) }

// boxInto draws crop of src into the w x h rectangle of dst at (dx, dy);
// crop is k times that size (see boxCrop).
func boxInto(src *astiav.Frame, crop layout.Rect, dst *astiav.Frame, dx, dy, w, h, k int) {
	C.box_rect(cFrame(src), C.int(crop.X), C.int(crop.Y), cFrame(dst), C.int(dx), C.int(dy),
		C.int(w), C.int(h), C.int(k))
}
