package recording

import (
	"bytes"
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/sink"
)

// fmp4 muxes one run of a recording into fragmented MP4 in memory: the
// init segment (ftyp + moov) when it opens, then one fragment (moof +
// mdat) per HLS segment each time cut is called. libavformat's mp4 muxer
// writes through a custom AVIOContext into buf, and frag_custom lets the
// caller decide where fragments end, so segments start on keyframes.
type fmp4 struct {
	fc      *astiav.FormatContext
	pb      *astiav.IOContext
	streams []*astiav.Stream
	src     []astiav.Rational // time base of the packets of each stream
	pkt     *astiav.Packet    // reused for every write
	buf     bytes.Buffer
	written bool // a packet since the last cut
}

// openFMP4 starts a run with the given streams and returns its init
// segment.
func openFMP4(streams ...sink.Stream) (_ *fmp4, init []byte, err error) {
	m := &fmp4{}
	defer func() {
		if err != nil {
			m.free()
		}
	}()
	if m.fc, err = astiav.AllocOutputFormatContext(nil, "mp4", ""); err != nil {
		return nil, nil, fmt.Errorf("mp4 muxer: %w", err)
	}
	if m.pb, err = astiav.AllocIOContext(64<<10, true, nil, nil, m.buf.Write); err != nil {
		return nil, nil, fmt.Errorf("mp4 io: %w", err)
	}
	m.fc.SetPb(m.pb)
	if m.streams, err = sink.AddMuxerStreams(m.fc, streams...); err != nil {
		return nil, nil, fmt.Errorf("mp4: %w", err)
	}
	for _, s := range streams {
		m.src = append(m.src, s.TimeBase)
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	if err := opts.Set("movflags", "frag_custom+empty_moov+default_base_moof+skip_trailer", 0); err != nil {
		return nil, nil, err
	}
	if err := m.fc.WriteHeader(opts); err != nil {
		return nil, nil, fmt.Errorf("mp4 header: %w", err)
	}
	m.pb.Flush()
	init = bytes.Clone(m.buf.Bytes())
	m.buf.Reset()
	m.pkt = astiav.AllocPacket()
	return m, init, nil
}

// write muxes p, a packet of stream i in that stream's source time base.
// p is not modified.
func (m *fmp4) write(p *astiav.Packet, i int) error {
	if err := m.pkt.Ref(p); err != nil {
		return fmt.Errorf("mp4: reference packet: %w", err)
	}
	defer m.pkt.Unref()
	m.pkt.SetStreamIndex(i)
	m.pkt.RescaleTs(m.src[i], m.streams[i].TimeBase())
	if err := m.fc.WriteFrame(m.pkt); err != nil {
		return fmt.Errorf("mp4: write: %w", err)
	}
	m.written = true
	return nil
}

// cut ends the fragment and returns it (nil when it would be empty).
func (m *fmp4) cut() ([]byte, error) {
	if !m.written {
		return nil, nil
	}
	m.written = false
	if err := m.fc.WriteFrame(nil); err != nil { // frag_custom: flush a fragment
		return nil, fmt.Errorf("mp4: fragment: %w", err)
	}
	m.pb.Flush()
	b := bytes.Clone(m.buf.Bytes())
	m.buf.Reset()
	return b, nil
}

// close writes the trailer (nothing with skip_trailer) and frees the
// muxer; the last fragment must have been cut.
func (m *fmp4) close() error {
	err := m.fc.WriteTrailer()
	m.free()
	return err
}

func (m *fmp4) free() {
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
}
