package ivsrec

import (
	"fmt"
	"io"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/sink"
)

const tsExt = ".ts"

// ioBufferSize is the buffer of the muxers' I/O contexts.
const ioBufferSize = 64 << 10

// mpegts writes self-contained MPEG-TS segments: a muxer per segment, so
// that each starts with its own PAT/PMT.
type mpegts struct {
	streams []Stream
	fc      *astiav.FormatContext // the open segment's; nil between segments
	pb      *astiav.IOContext
	out     []*astiav.Stream // of fc: in the order of streams
	pkt     *astiav.Packet   // reused for every write
}

func newMPEGTS(streams ...Stream) *mpegts {
	return &mpegts{streams: streams, pkt: astiav.AllocPacket()}
}

func (*mpegts) ext() string    { return tsExt }
func (*mpegts) version() uint8 { return 3 }
func (*mpegts) init() []byte   { return nil }

func (m *mpegts) open(w io.Writer) (err error) {
	defer func() {
		if err != nil {
			m.free()
		}
	}()
	if m.fc, err = astiav.AllocOutputFormatContext(nil, "mpegts", ""); err != nil {
		return fmt.Errorf("ivsrec: mpegts muxer: %w", err)
	}
	if m.pb, err = astiav.AllocIOContext(ioBufferSize, true, nil, nil, w.Write); err != nil {
		return fmt.Errorf("ivsrec: mpegts io: %w", err)
	}
	m.fc.SetPb(m.pb)
	if m.out, err = sink.AddMuxerStreams(m.fc, m.streams...); err != nil {
		return fmt.Errorf("ivsrec: %w", err)
	}
	if err := m.fc.WriteHeader(nil); err != nil {
		return fmt.Errorf("ivsrec: segment header: %w", err)
	}
	return nil
}

func (m *mpegts) write(p *astiav.Packet, i int) error {
	if err := m.pkt.Ref(p); err != nil {
		return fmt.Errorf("ivsrec: reference packet: %w", err)
	}
	m.pkt.SetStreamIndex(i)
	m.pkt.RescaleTs(m.streams[i].TimeBase, m.out[i].TimeBase())
	if err := m.fc.WriteInterleavedFrame(m.pkt); err != nil {
		return fmt.Errorf("ivsrec: mpegts: %w", err)
	}
	return nil
}

func (m *mpegts) finish() error {
	err := m.fc.WriteTrailer()
	m.pb.Flush()
	m.free()
	if err != nil {
		return fmt.Errorf("ivsrec: segment trailer: %w", err)
	}
	return nil
}

func (m *mpegts) close() error {
	m.free()
	if m.pkt != nil {
		m.pkt.Free()
		m.pkt = nil
	}
	return nil
}

// free drops the open segment's muxer.
func (m *mpegts) free() {
	if m.fc != nil {
		m.fc.Free()
		m.fc = nil
	}
	if m.pb != nil {
		m.pb.Free()
		m.pb = nil
	}
}

var _ format = (*mpegts)(nil)
