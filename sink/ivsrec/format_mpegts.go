package ivsrec

import (
	"fmt"
	"io"

	"github.com/asticode/go-astiav"
)

const tsExt = ".ts"

// mpegts writes self-contained MPEG-TS segments: a format context per
// segment, so that each starts with its own PAT/PMT.
type mpegts struct {
	mux *muxer
	pkt *astiav.Packet // reused for every write
	w   io.Writer      // the open segment
}

func newMPEGTS(streams ...Stream) (*mpegts, error) {
	m := &mpegts{w: io.Discard}
	var err error
	if m.mux, err = newMuxer("mpegts", streams, func(b []byte) (int, error) { return m.w.Write(b) }); err != nil {
		return nil, err
	}
	m.pkt = astiav.AllocPacket()
	return m, nil
}

func (*mpegts) ext() string    { return tsExt }
func (*mpegts) version() uint8 { return 3 }
func (*mpegts) init() []byte   { return nil }

func (m *mpegts) open(w io.Writer) error {
	m.w = w
	if err := m.mux.start(); err != nil {
		return err
	}
	if err := m.mux.fc.WriteHeader(nil); err != nil {
		m.stop()
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
	m.stop()
	if err != nil {
		return fmt.Errorf("ivsrec: segment trailer: %w", err)
	}
	return nil
}

// stop ends the segment's format context; nothing more goes to its writer.
func (m *mpegts) stop() {
	m.mux.stop()
	m.w = io.Discard
}

func (m *mpegts) close() error {
	m.w = io.Discard // an open segment is dropped
	m.mux.free()
	m.pkt.Free()
	return nil
}

var _ format = (*mpegts)(nil)
