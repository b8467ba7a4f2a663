package ivsrec

import (
	"fmt"
	"io"

	"github.com/asticode/go-astiav"
)

const tsExt = ".ts"

// mpegts writes self-contained MPEG-TS segments: a muxer per segment, so
// that each starts with its own PAT/PMT.
type mpegts struct {
	streams []Stream
	mux     muxer          // the open segment's; empty between segments
	pkt     *astiav.Packet // reused for every write
}

func newMPEGTS(streams ...Stream) *mpegts {
	return &mpegts{streams: streams, pkt: astiav.AllocPacket()}
}

func (*mpegts) ext() string    { return tsExt }
func (*mpegts) version() uint8 { return 3 }
func (*mpegts) init() []byte   { return nil }

func (m *mpegts) open(w io.Writer) error {
	if err := m.mux.open("mpegts", m.streams, w.Write); err != nil {
		return err
	}
	if err := m.mux.fc.WriteHeader(nil); err != nil {
		m.mux.free()
		return fmt.Errorf("ivsrec: segment header: %w", err)
	}
	return nil
}

func (m *mpegts) write(p *astiav.Packet, i int) error {
	if err := m.mux.packet(m.pkt, p, i); err != nil {
		return err
	}
	if err := m.mux.fc.WriteInterleavedFrame(m.pkt); err != nil {
		return fmt.Errorf("ivsrec: mpegts: %w", err)
	}
	return nil
}

func (m *mpegts) finish() error {
	err := m.mux.fc.WriteTrailer()
	m.mux.pb.Flush()
	m.mux.free()
	if err != nil {
		return fmt.Errorf("ivsrec: segment trailer: %w", err)
	}
	return nil
}

func (m *mpegts) close() error {
	m.mux.free()
	if m.pkt != nil {
		m.pkt.Free()
		m.pkt = nil
	}
	return nil
}

var _ format = (*mpegts)(nil)
