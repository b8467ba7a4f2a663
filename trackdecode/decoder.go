package trackdecode

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// decoder is a go-astiav decoder with its packet and frame, allocated once
// and reused for every frame.
type decoder struct {
	cc    *astiav.CodecContext
	pkt   *astiav.Packet
	frame *astiav.Frame
	// in holds a frame's data followed by inputPadding zero bytes, copied
	// into the packet: the samplebuilder's buffer has no padding.
	in []byte
}

// decoderOptions are what differs between the codecs.
type decoderOptions struct {
	id        astiav.CodecID
	maxPixels int // 0: no limit
	configure func(cc *astiav.CodecContext)
}

func openDecoder(o decoderOptions) (*decoder, error) {
	codec := astiav.FindDecoder(o.id)
	if codec == nil {
		return nil, fmt.Errorf("trackdecode: %s decoder not found in FFmpeg", o.id)
	}
	d := &decoder{}
	if d.cc = astiav.AllocCodecContext(codec); d.cc == nil {
		return nil, fmt.Errorf("trackdecode: allocate %s decoder", o.id)
	}
	// One thread: a composition decodes many tracks at once, each on its
	// reader goroutine, and frame threads would delay every frame.
	d.cc.SetThreadCount(1)
	if o.configure != nil {
		o.configure(d.cc)
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	if o.maxPixels > 0 {
		// A keyframe header is 4 bytes of garbage away from asking for a
		// 16k x 16k picture; refuse what no participant sends.
		if err := opts.Set("max_pixels", strconv.Itoa(o.maxPixels), 0); err != nil {
			d.free()
			return nil, fmt.Errorf("trackdecode: %s decoder option max_pixels: %w", o.id, err)
		}
	}
	if err := d.cc.Open(codec, opts); err != nil {
		d.free()
		return nil, fmt.Errorf("trackdecode: open %s decoder: %w", o.id, err)
	}
	d.pkt = astiav.AllocPacket()
	d.frame = astiav.AllocFrame()
	if d.pkt == nil || d.frame == nil {
		d.free()
		return nil, fmt.Errorf("trackdecode: allocate %s packet and frame", o.id)
	}
	return d, nil
}

func (d *decoder) free() {
	if d.frame != nil {
		d.frame.Free()
		d.frame = nil
	}
	if d.pkt != nil {
		d.pkt.Free()
		d.pkt = nil
	}
	if d.cc != nil {
		d.cc.Free()
		d.cc = nil
	}
}

// Boxed once: errors.Is against the constants would box them on every call.
var (
	errAgain error = astiav.ErrEagain
	errEOF   error = astiav.ErrEof
)

// send hands the decoder one frame's data. The packet is unreferenced
// before send returns; the decoder keeps its own reference if it needs one.
func (d *decoder) send(data []byte, pts int64) error {
	d.in = append(d.in[:0], data...)
	d.in = append(d.in, make([]byte, inputPadding)...)
	// FromData copies into a buffer of FFmpeg's; the size then excludes the
	// padding, which stays there, zeroed.
	if err := d.pkt.FromData(d.in); err != nil {
		return err
	}
	d.pkt.SetSize(len(data))
	d.pkt.SetPts(pts)
	err := d.cc.SendPacket(d.pkt)
	d.pkt.Unref()
	return err
}

// receive fills d.frame with the next decoded frame. It reports false when
// the decoder needs more data.
func (d *decoder) receive() (bool, error) {
	d.frame.Unref()
	err := d.cc.ReceiveFrame(d.frame)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errAgain), errors.Is(err, errEOF):
		return false, nil
	}
	return false, err
}
