package rtmp

/*
#cgo pkg-config: libavformat libavutil
#include <stdlib.h>
#include <libavformat/avio.h>
#include <libavutil/dict.h>

static int interrupt_cb(void *opaque) { return __atomic_load_n((int *)opaque, __ATOMIC_SEQ_CST); }
static void set_flag(int *flag) { __atomic_store_n(flag, 1, __ATOMIC_SEQ_CST); }

static int open_output(AVIOContext **pb, const char *url, AVDictionary **opts, int *flag) {
	AVIOInterruptCB cb = { interrupt_cb, flag };
	return avio_open2(pb, url, AVIO_FLAG_WRITE, &cb, opts);
}

// write_bytes sends buf and flushes: the RTMP protocol turns each flush of
// FLV tags into RTMP messages on the wire.
static int write_bytes(AVIOContext *pb, const uint8_t *buf, int size) {
	avio_write(pb, buf, size);
	avio_flush(pb);
	return pb->error;
}
*/
import "C"

import (
	"errors"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// conn is the network side of a stream: an AVIOContext on an rtmp(s):// URL,
// opened with protocol options and an interrupt flag.
type conn struct {
	pb   *C.AVIOContext
	flag *C.int // read by libavformat's interrupt callback; C memory, so C may keep it
	err  error  // the first write error: the cause to report
}

func newConn() *conn {
	return &conn{flag: (*C.int)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int(0)))))}
}

// open connects. It returns early, with an error, once c is interrupted.
func (c *conn) open(url string, opts map[string]string) error {
	var dict *C.AVDictionary
	defer C.av_dict_free(&dict)
	for k, v := range opts {
		ck, cv := C.CString(k), C.CString(v)
		C.av_dict_set(&dict, ck, cv, 0)
		C.free(unsafe.Pointer(ck))
		C.free(unsafe.Pointer(cv))
	}
	curl := C.CString(url)
	defer C.free(unsafe.Pointer(curl))
	if r := C.open_output(&c.pb, curl, &dict, c.flag); r < 0 {
		c.pb = nil
		return astiav.Error(r)
	}
	return nil
}

// write is the FLV muxer's output: it sends every byte or reports why not.
func (c *conn) write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(b) == 0 {
		return 0, nil
	}
	if r := C.write_bytes(c.pb, (*C.uint8_t)(unsafe.Pointer(&b[0])), C.int(len(b))); r < 0 {
		c.err = astiav.Error(r)
		return 0, c.err
	}
	return len(b), nil
}

// interrupt makes blocking operations on c return at once. Safe from any goroutine.
func (c *conn) interrupt() { C.set_flag(c.flag) }

// failure prefers the network error behind a muxer error.
func (c *conn) failure(err error) error {
	if c != nil && c.err != nil {
		return c.err
	}
	return err
}

func (c *conn) close() error {
	var err error
	if c.pb != nil {
		if r := C.avio_closep(&c.pb); r < 0 && c.err == nil {
			err = astiav.Error(r)
		}
	}
	C.free(unsafe.Pointer(c.flag))
	return errors.Join(err)
}
