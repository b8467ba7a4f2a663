package ivsrec

import (
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/sink"
)

// ioBufferSize is the buffer of the muxers' I/O contexts.
const ioBufferSize = 64 << 10

// muxer is a libavformat muxer writing through a custom I/O context, what
// both formats are built on.
type muxer struct {
	fc  *astiav.FormatContext
	pb  *astiav.IOContext
	out []*astiav.Stream // of fc: in the order of src
	src []Stream
}

// open allocates a muxer of the named container for streams, writing
// with write; the caller writes the header.
func (m *muxer) open(name string, streams []Stream, write astiav.IOContextWriteFunc) (err error) {
	defer func() {
		if err != nil {
			m.free()
		}
	}()
	if m.fc, err = astiav.AllocOutputFormatContext(nil, name, ""); err != nil {
		return fmt.Errorf("ivsrec: %s muxer: %w", name, err)
	}
	if m.pb, err = astiav.AllocIOContext(ioBufferSize, true, nil, nil, write); err != nil {
		return fmt.Errorf("ivsrec: %s io: %w", name, err)
	}
	m.fc.SetPb(m.pb)
	if m.out, err = sink.AddMuxerStreams(m.fc, streams...); err != nil {
		return fmt.Errorf("ivsrec: %s: %w", name, err)
	}
	m.src = streams
	return nil
}

// packet references p in pkt as a packet of stream i, in the muxer's time
// base. p is not modified.
func (m *muxer) packet(pkt, p *astiav.Packet, i int) error {
	if err := pkt.Ref(p); err != nil {
		return fmt.Errorf("ivsrec: reference packet: %w", err)
	}
	pkt.SetStreamIndex(i)
	pkt.RescaleTs(m.src[i].TimeBase, m.out[i].TimeBase())
	return nil
}

// free frees the muxer; it may be opened again.
func (m *muxer) free() {
	if m.fc != nil {
		m.fc.Free()
		m.fc = nil
	}
	if m.pb != nil {
		m.pb.Free()
		m.pb = nil
	}
}
