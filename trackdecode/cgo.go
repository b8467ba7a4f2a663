package trackdecode

/*
#cgo pkg-config: libavcodec libavutil
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>

// frame_damaged reports a frame the decoder produced despite errors in its
// data (concealed slices, a broken reference): go-astiav v0.16 exposes
// neither flag.
static int frame_damaged(const AVFrame *f) {
	return (f->flags & AV_FRAME_FLAG_CORRUPT) != 0 || f->decode_error_flags != 0;
}
*/
import "C"

import "github.com/asticode/go-astiav"

// inputPadding is the zeroed tail FFmpeg requires after a packet's data:
// its bitstream readers read that far past the end.
const inputPadding = C.AV_INPUT_BUFFER_PADDING_SIZE

func frameDamaged(f *astiav.Frame) bool {
	return C.frame_damaged((*C.AVFrame)(f.UnsafePointer())) != 0
}
