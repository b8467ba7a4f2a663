// Package avframe gives Go code zero-copy access to the planes of astiav
// frames, which go-astiav v0.16 only exposes as copies. The slices alias C
// memory: they are valid while the frame holds its buffer, and must not be
// kept past an Unref or Free.
package avframe

/*
#cgo pkg-config: libavutil
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

static int plane_rows(const AVFrame *f, int i) {
	const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
	if (!d || i == 0 || i == 3 || (d->flags & AV_PIX_FMT_FLAG_PAL)) return f->height;
	return AV_CEIL_RSHIFT(f->height, d->log2_chroma_h);
}

static int audio_plane_bytes(const AVFrame *f) {
	int bps = av_get_bytes_per_sample(f->format);
	int per = av_sample_fmt_is_planar(f->format) ? 1 : f->ch_layout.nb_channels;
	return f->nb_samples * bps * per;
}
*/
import "C"

import (
	"unsafe"

	"github.com/asticode/go-astiav"
)

func cFrame(f *astiav.Frame) *C.AVFrame { return (*C.AVFrame)(f.UnsafePointer()) }

// VideoPlane returns plane i of a video frame (rows x line size bytes) and
// its line size; nil when the frame has no such plane.
func VideoPlane(f *astiav.Frame, i int) ([]byte, int) {
	c := cFrame(f)
	if i < 0 || i >= 4 || c.data[i] == nil {
		return nil, 0
	}
	ls := int(c.linesize[i])
	rows := int(C.plane_rows(c, C.int(i)))
	return unsafe.Slice((*byte)(unsafe.Pointer(c.data[i])), rows*ls), ls
}

// AudioPlane returns the samples of plane i of an audio frame: one channel of
// a planar format, or every channel interleaved in plane 0 of a packed one.
func AudioPlane(f *astiav.Frame, i int) []byte {
	c := cFrame(f)
	if i < 0 || i >= 8 || c.data[i] == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(c.data[i])), int(C.audio_plane_bytes(c)))
}
