package ivsrec

import (
	"bytes"
	"fmt"
	"io"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/sink"
)

const mp4Ext = ".mp4"

// fmp4Version is the HLS version of fMP4 segments (EXT-X-MAP in a media playlist without I-frames only).
const fmp4Version = 7

// fmp4 muxes one run into fragmented MP4: the init segment (ftyp + moov)
// when it is created, then one fragment (moof + mdat) per segment.
// libavformat's mp4 muxer writes through a custom I/O context into the
// open segment's writer, and frag_custom lets finish decide where
// fragments end, so segments start on keyframes.
type fmp4 struct {
	fc      *astiav.FormatContext
	pb      *astiav.IOContext
	streams []*astiav.Stream
	src     []astiav.Rational // time base of the packets of each stream
	pkt     *astiav.Packet    // reused for every write
	w       io.Writer         // the open segment, or the init segment
	head    []byte            // the init segment
}

// newFMP4 starts a run with the given streams and writes its init segment.
func newFMP4(streams ...Stream) (_ *fmp4, err error) {
	m := &fmp4{}
	defer func() {
		if err != nil {
			_ = m.close()
		}
	}()
	if m.fc, err = astiav.AllocOutputFormatContext(nil, "mp4", ""); err != nil {
		return nil, fmt.Errorf("ivsrec: mp4 muxer: %w", err)
	}
	if m.pb, err = astiav.AllocIOContext(ioBufferSize, true, nil, nil, func(b []byte) (int, error) { return m.w.Write(b) }); err != nil {
		return nil, fmt.Errorf("ivsrec: mp4 io: %w", err)
	}
	m.fc.SetPb(m.pb)
	if m.streams, err = sink.AddMuxerStreams(m.fc, streams...); err != nil {
		return nil, fmt.Errorf("ivsrec: mp4: %w", err)
	}
	for _, s := range streams {
		m.src = append(m.src, s.TimeBase)
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	if err := opts.Set("movflags", "frag_custom+empty_moov+default_base_moof+skip_trailer", 0); err != nil {
		return nil, fmt.Errorf("ivsrec: mp4 options: %w", err)
	}
	var head bytes.Buffer
	m.w = &head
	if err := m.fc.WriteHeader(opts); err != nil {
		return nil, fmt.Errorf("ivsrec: mp4 header: %w", err)
	}
	m.pb.Flush()
	m.head, m.w = head.Bytes(), io.Discard
	m.pkt = astiav.AllocPacket()
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
	if err := m.pkt.Ref(p); err != nil {
		return fmt.Errorf("ivsrec: reference packet: %w", err)
	}
	defer m.pkt.Unref()
	m.pkt.SetStreamIndex(i)
	m.pkt.RescaleTs(m.src[i], m.streams[i].TimeBase())
	if err := m.fc.WriteFrame(m.pkt); err != nil {
		return fmt.Errorf("ivsrec: mp4: %w", err)
	}
	return nil
}

func (m *fmp4) finish() error {
	defer func() { m.w = io.Discard }()
	if err := m.fc.WriteFrame(nil); err != nil { // frag_custom: flush a fragment
		return fmt.Errorf("ivsrec: mp4 fragment: %w", err)
	}
	m.pb.Flush()
	return nil
}

// close writes the trailer (nothing, with skip_trailer) and frees the
// muxer.
func (m *fmp4) close() error {
	var err error
	if m.fc != nil && m.pkt != nil {
		err = m.fc.WriteTrailer()
	}
	if m.pkt != nil {
		m.pkt.Free()
		m.pkt = nil
	}
	if m.fc != nil {
		m.fc.Free()
		m.fc = nil
	}
	if m.pb != nil {
		m.pb.Free()
		m.pb = nil
	}
	if err != nil {
		return fmt.Errorf("ivsrec: mp4 trailer: %w", err)
	}
	return nil
}

var _ format = (*fmp4)(nil)
