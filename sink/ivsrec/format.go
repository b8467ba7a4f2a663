package ivsrec

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/asticode/go-astiav"
)

// format muxes the streams of one run of a recording into HLS segments of
// one container. Recorder and Writer share the segment files, playlist and
// announcements; only the container differs.
type format interface {
	// ext is the extension of segment files.
	ext() string
	// version is the HLS protocol version the container needs.
	version() uint8
	// init is the run's init segment (EXT-X-MAP); nil when every segment
	// carries its own headers.
	init() []byte
	// open starts a segment written to w.
	open(w io.Writer) error
	// write muxes p, a packet of stream i in that stream's source time
	// base. p is not modified.
	write(p *astiav.Packet, i int) error
	// finish ends the open segment: all of it is in its writer.
	finish() error
	// close frees the muxer; an open segment is dropped.
	close() error
}

// segmentFile is the open segment: the format writes it to a partial file
// that gets its final name once complete, so that readers never see part
// of it.
type segmentFile struct {
	f     *os.File
	path  string // final
	wrote bool   // a packet went in
}

// openSegment creates the partial file of the segment at path and starts
// the segment in it.
func openSegment(fm format, path string) (*segmentFile, error) {
	f, err := os.OpenFile(path+".part", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ivsrec: %w", err)
	}
	if err := fm.open(f); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, err
	}
	return &segmentFile{f: f, path: path}, nil
}

func (s *segmentFile) write(fm format, p *astiav.Packet, i int) error {
	if err := fm.write(p, i); err != nil {
		return err
	}
	s.wrote = true
	return nil
}

// finish completes the segment and gives it its final name; an empty one
// is removed and finish reports false.
func (s *segmentFile) finish(fm format) (bool, error) {
	err := fm.finish()
	if err = errors.Join(err, s.f.Close()); err != nil || !s.wrote {
		_ = os.Remove(s.f.Name())
		return false, err
	}
	if err := os.Rename(s.f.Name(), s.path); err != nil {
		return false, fmt.Errorf("ivsrec: %w", err)
	}
	return true, nil
}

// abandon drops the segment, partial file and all.
func (s *segmentFile) abandon() {
	_ = s.f.Close()
	_ = os.Remove(s.f.Name())
}
