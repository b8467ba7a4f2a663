package recording

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// playlist is the media playlist of an individual recording: fMP4
// segments, a new EXT-X-MAP and EXT-X-DISCONTINUITY for each run (a
// reconnect within the window), EXT-X-PROGRAM-DATE-TIME at the start of
// each run so that recordings of several participants can be aligned, as
// IVS writes them.
type playlist struct {
	target   int // targetSegmentDurationSeconds
	segments []segment
	ended    bool
}

type segment struct {
	name     string
	duration float64
	// run is set on the first segment of a run: its init segment and the
	// wall-clock time of its first sample.
	init  string
	start time.Time
	// discontinuity: a run other than the first starts here.
	discontinuity bool
}

func (p *playlist) add(s segment) { p.segments = append(p.segments, s) }

// duration is the recorded media time.
func (p *playlist) duration() time.Duration {
	var d float64
	for _, s := range p.segments {
		d += s.duration
	}
	return time.Duration(d * float64(time.Second))
}

func (p *playlist) encode() []byte {
	target := p.target
	for _, s := range p.segments {
		target = max(target, int(math.Round(s.duration)))
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", target)
	if p.ended {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	for _, s := range p.segments {
		if s.discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if s.init != "" {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=%q\n", s.init)
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.start.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", s.duration, s.name)
	}
	if p.ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// multivariant is the recording's multivariant playlist: one rendition,
// "high".
func multivariant(bandwidth int, codecs string, width, height int) []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=%q", bandwidth, codecs)
	if width > 0 {
		fmt.Fprintf(&b, ",RESOLUTION=%dx%d", width, height)
	}
	b.WriteString("\n" + rendition + "/playlist.m3u8\n")
	return []byte(b.String())
}
