package ivsrec

import (
	"bytes"
	"fmt"
	"io"

	"github.com/asticode/go-astiav"
)

const mp4Ext = ".mp4"

// fmp4Version is the HLS version of fMP4 segments: EXT-X-MAP in a playlist
// that is not I-frames only.
const fmp4Version = 7

// fmp4 muxes one run into fragmented MP4: the init segment (ftyp + moov)
// when it is created, then one fragment (moof + mdat) per segment.
// libavformat's mp4 muxer writes through a custom I/O context into the
// open segment's writer, and frag_custom lets finish decide where
// fragments end, so segments start on keyframes.
type fmp4 struct {
	mux  *muxer
	pkt  *astiav.Packet // reused for every write
	w    io.Writer      // the open segment, or the init segment
	head []byte         // the init segment
}

// newFMP4 starts a run with the given streams and writes its init segment.
func newFMP4(streams ...Stream) (_ *fmp4, err error) {
	m := &fmp4{w: io.Discard}
	if m.mux, err = newMuxer("mp4", streams, func(b []byte) (int, error) { return m.w.Write(b) }); err != nil {
		return nil, err
	}
	m.pkt = astiav.AllocPacket()
	defer func() {
		if err != nil {
			_ = m.close()
		}
	}()
	if err := m.mux.start(); err != nil {
		return nil, err
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	if err := opts.Set("movflags", "frag_custom+empty_moov+default_base_moof+skip_trailer", 0); err != nil {
		return nil, fmt.Errorf("ivsrec: mp4 options: %w", err)
	}
	var head bytes.Buffer
	m.w = &head
	if err := m.mux.fc.WriteHeader(opts); err != nil {
		return nil, fmt.Errorf("ivsrec: mp4 header: %w", err)
	}
	m.mux.pb.Flush()
	m.head, m.w = head.Bytes(), io.Discard
	return m, nil
}

func (*fmp4) ext() string    { return mp4Ext }
func (*fmp4) version() uint8 { return fmp4Version }
func (m *fmp4) init() []byte { return m.head }

func (m *fmp4) open(w io.Writer) error {
	m.w = w
	return nil
}

func (m *fmp4) write(p *astiav.Packet, i int) error {
	if err := m.mux.packet(m.pkt, p, i); err != nil {
		return err
	}
	defer m.pkt.Unref()
	if err := m.mux.fc.WriteFrame(m.pkt); err != nil {
		return fmt.Errorf("ivsrec: mp4: %w", err)
	}
	return nil
}

func (m *fmp4) finish() error {
	defer func() { m.w = io.Discard }()
	if err := m.mux.fc.WriteFrame(nil); err != nil { // frag_custom: flush a fragment
		return fmt.Errorf("ivsrec: mp4 fragment: %w", err)
	}
	m.mux.pb.Flush()
	return nil
}

// close writes the trailer (nothing, with skip_trailer) and frees the
// muxer.
func (m *fmp4) close() error {
	var err error
	if m.head != nil {
		err = m.mux.fc.WriteTrailer()
	}
	m.w = io.Discard
	m.mux.free()
	m.pkt.Free()
	if err != nil {
		return fmt.Errorf("ivsrec: mp4 trailer: %w", err)
	}
	return nil
}

var _ format = (*fmp4)(nil)
