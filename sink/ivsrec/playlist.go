package ivsrec

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/grafov/m3u8"
)

// maxSegments bounds a playlist: IVS compositions last at most 24 h.
const maxSegments = 24 * 3600 / MinSegmentSeconds

// playlist is a rendition's media playlist: an EVENT playlist while the
// recording goes on, VOD with EXT-X-ENDLIST once it ends.
type playlist struct {
	m        *m3u8.MediaPlaylist
	duration float64 // seconds in its segments
}

// newPlaylist starts a playlist of the target segment duration, of the
// protocol version its segment format needs.
func newPlaylist(target int, version uint8) (*playlist, error) {
	m, err := m3u8.NewMediaPlaylist(0, maxSegments)
	if err != nil {
		return nil, fmt.Errorf("ivsrec: playlist: %w", err)
	}
	m.MediaType = m3u8.EVENT
	m.TargetDuration = float64(target)
	m.SetVersion(version)
	return &playlist{m: m}, nil
}

// add appends a segment; the playlist's target duration grows to cover it.
func (p *playlist) add(s *m3u8.MediaSegment) error {
	if err := p.m.AppendSegment(s); err != nil {
		return fmt.Errorf("ivsrec: playlist: %w", err)
	}
	p.duration += s.Duration
	return nil
}

// end makes the playlist VOD with EXT-X-ENDLIST.
func (p *playlist) end() {
	p.m.MediaType = m3u8.VOD
	p.m.Close()
}

// encode returns the playlist; the bytes are valid until the next call.
func (p *playlist) encode() []byte {
	p.m.ResetCache()
	return p.m.Encode().Bytes()
}

// multivariant is a multivariant playlist of one rendition.
func multivariant(rendition string, v m3u8.VariantParams, version uint8) []byte {
	m := m3u8.NewMasterPlaylist()
	if version >= 6 { // fMP4: every segment starts with a keyframe
		m.SetVersion(version)
		m.SetIndependentSegments(true)
	}
	m.Append(rendition+"/"+playlistName, nil, v)
	return m.Encode().Bytes()
}

// ReadPlaylist reads the segments of a media playlist a Recorder wrote.
func ReadPlaylist(data []byte) ([]Segment, error) {
	pl, kind, err := m3u8.Decode(*bytes.NewBuffer(data), true)
	if err != nil {
		return nil, fmt.Errorf("ivsrec: read playlist: %w", err)
	}
	mp, ok := pl.(*m3u8.MediaPlaylist)
	if !ok || kind != m3u8.MEDIA {
		return nil, errors.New("ivsrec: read playlist: not a media playlist")
	}
	out := make([]Segment, 0, mp.Count())
	for _, s := range mp.Segments[:mp.Count()] {
		n, err := strconv.Atoi(strings.TrimSuffix(s.URI, tsExt))
		if err != nil || !strings.HasSuffix(s.URI, tsExt) {
			return nil, fmt.Errorf("ivsrec: read playlist: segment %q is not <n>.ts", s.URI)
		}
		out = append(out, Segment{Index: n, Duration: s.Duration, Discontinuity: s.Discontinuity})
	}
	return out, nil
}
