package ivsrec

import (
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/sink"
)

// ioBufferSize is the buffer of the muxers' I/O contexts.
const ioBufferSize = 64 << 10

// muxer is a libavformat muxer of one container writing through a custom
// I/O context, what both formats are built on. The I/O context lives as
// long as the muxer (astiav keeps the callback of every one it allocated);
// the format context may be started and stopped for each segment.
type muxer struct {
	name string
	src  []Stream
	pb   *astiav.IOContext
	fc   *astiav.FormatContext // nil when stopped
	out  []*astiav.Stream      // of fc: in the order of src
}

// newMuxer allocates a muxer of the named container for streams, writing
// with write.
func newMuxer(name string, streams []Stream, write astiav.IOContextWriteFunc) (*muxer, error) {
	pb, err := astiav.AllocIOContext(ioBufferSize, true, nil, nil, write)
	if err != nil {
		return nil, fmt.Errorf("ivsrec: %s io: %w", name, err)
	}
	return &muxer{name: name, src: streams, pb: pb}, nil
}

// start allocates the format context and its streams; the caller writes
// the header.
func (m *muxer) start() (err error) {
	if m.fc, err = astiav.AllocOutputFormatContext(nil, m.name, ""); err != nil {
		return fmt.Errorf("ivsrec: %s muxer: %w", m.name, err)
	}
	m.fc.SetPb(m.pb)
	if m.out, err = sink.AddMuxerStreams(m.fc, m.src...); err != nil {
		m.stop()
		return fmt.Errorf("ivsrec: %s: %w", m.name, err)
	}
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

// stop flushes what the I/O context holds and frees the format context.
func (m *muxer) stop() {
	m.pb.Flush()
	if m.fc != nil {
		m.fc.Free()
		m.fc = nil
	}
}

// free frees the muxer.
func (m *muxer) free() {
	m.stop()
	m.pb.Free()
}
