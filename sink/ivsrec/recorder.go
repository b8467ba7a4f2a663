// Package hls records an encoded H.264/AAC stream as HLS in a local
// directory, laid out as IVS lays out a composite recording under its prefix:
//
//	media/hls/multivariant.m3u8
//	media/hls/<rendition>/playlist.m3u8
//	media/hls/<rendition>/<n>.ts
//
// Segments are MPEG-TS, cut on the first video keyframe at or after the
// target segment duration (the encoder places keyframes on segment
// boundaries, so segments last exactly the target). The media playlist is
// rewritten, atomically, each time a segment is complete, as an EVENT
// playlist; Close finishes the last segment and ends the playlist with
// EXT-X-ENDLIST. The directory doubles as the spool an object-store uploader
// reads from: a file is complete once it has its final name.
//
// A recording can span several runs (a composition moved to another worker):
// a run started with Config.Resume keeps the earlier segments in the
// playlist and continues after an EXT-X-DISCONTINUITY with the next unused
// segment number, and a run that is handed off (Handoff) finishes its last
// segment without ending the playlist.
package ivsrec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/grafov/m3u8"

	"github.com/stagehand-rt/stagehand/sink"
)

// Target segment durations IVS accepts, in seconds.
const (
	MinSegmentSeconds     = 2
	MaxSegmentSeconds     = 10
	DefaultSegmentSeconds = 6
	// maxSegments bounds the playlist: IVS compositions last at most 24 h.
	maxSegments = 24 * 3600 / MinSegmentSeconds
)

// Stream is one encoded stream the recorder muxes.
type Stream = sink.Stream

// Config describes one recording.
type Config struct {
	Dir            string // the recording prefix on local disk
	Rendition      string // rendition folder, e.g. "720p30-AbCdEfGhIjKl"
	SegmentSeconds int    // 2..10; default 6
	Video          Stream
	Audio          *Stream // nil for video only
	Framerate      int     // for the multivariant playlist
	Bandwidth      int     // peak bits per second of the rendition, for the multivariant playlist
	// OnFile, when set, is told of every file once it is complete, by its
	// path relative to Dir with slashes, segments before the playlists that
	// name them: the uploader's queue.
	OnFile func(rel string)
	// StageARN goes into the recording's event objects.
	StageARN string
	// Resume continues an earlier run's recording of the same rendition.
	Resume *Resume
	// OnSegment, when set, is told of every finished segment before the
	// playlist names it. An error fails the recording: it is how a run
	// learns that another one took the recording over.
	OnSegment func(Segment) error
	// Admit, when set, is asked before segment index is opened. An error
	// fails the recording (the spool is full, say).
	Admit func(index int) error
}

// ErrDetached, wrapped in an OnSegment or Admit error, says that another
// run took the recording over: this run writes nothing more, and Close
// leaves the recording's files to that run.
var ErrDetached = errors.New("hls: the recording was taken over by another run")

// Segment is one finished media segment of a recording, <Index>.ts.
type Segment struct {
	Index    int     `json:"index"`
	Duration float64 `json:"duration"`
	// Discontinuity: the segment starts a new run (EXT-X-DISCONTINUITY).
	Discontinuity bool `json:"discontinuity,omitempty"`
}

// Resume is where an earlier run of a recording stopped.
type Resume struct {
	// Segments are the earlier runs' segments, in playlist order.
	Segments []Segment
	// Next is the first segment number this run uses. It must exceed every
	// number an earlier run used, including segments not in Segments (a
	// run that died with segments not yet in the playlist).
	Next int
}

// Validate checks the configuration before anything is written.
func (c Config) Validate() error {
	if c.Dir == "" || c.Rendition == "" {
		return errors.New("hls: a directory and a rendition name are required")
	}
	if s := c.SegmentSeconds; s != 0 && (s < MinSegmentSeconds || s > MaxSegmentSeconds) {
		return fmt.Errorf("hls: targetSegmentDurationSeconds %d is outside %d..%d", s, MinSegmentSeconds, MaxSegmentSeconds)
	}
	if c.Video.Params == nil || c.Video.Params.MediaType() != astiav.MediaTypeVideo {
		return errors.New("hls: a video stream is required")
	}
	return nil
}

// Recorder writes segments and playlists. It is not safe for concurrent use:
// one goroutine (the destination's) feeds it.
type Recorder struct {
	cfg      Config
	mediaDir string
	playlist *m3u8.MediaPlaylist

	mux      *astiav.FormatContext // the open segment; nil between segments
	streams  []*astiav.Stream      // of mux: video, then audio
	pkt      *astiav.Packet        // reused for every write
	index    int                   // number of the open (or next) segment
	written  int                   // segments this run finished
	start    float64               // video time at which the open segment began, seconds
	last     float64               // video time of the end of the last video packet written, seconds
	closed   bool
	handoff  atomic.Bool // Close leaves the recording open for the next run
	detached bool        // another run owns the recording (ErrDetached)

	startedAt time.Time
	duration  float64 // seconds in finished segments
	failure   error   // set by Fail: the recording ends with failure
}

// New creates the directories and the multivariant playlist.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SegmentSeconds == 0 {
		cfg.SegmentSeconds = DefaultSegmentSeconds
	}
	r := &Recorder{cfg: cfg, mediaDir: filepath.Join(cfg.Dir, "media", "hls", cfg.Rendition), start: math.NaN()}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "events"), 0o755); err != nil {
		return nil, fmt.Errorf("hls: %w", err)
	}
	if err := os.MkdirAll(r.mediaDir, 0o755); err != nil {
		return nil, fmt.Errorf("hls: %w", err)
	}
	p, err := m3u8.NewMediaPlaylist(0, maxSegments)
	if err != nil {
		return nil, fmt.Errorf("hls: playlist: %w", err)
	}
	p.MediaType = m3u8.EVENT
	p.TargetDuration = float64(cfg.SegmentSeconds)
	p.SetVersion(3)
	r.playlist = p
	r.startedAt = time.Now()
	if err := r.resume(); err != nil {
		return nil, err
	}
	if err := r.writeMultivariant(); err != nil {
		return nil, err
	}
	if cfg.Resume == nil {
		if err := r.writeEvent(eventStartedFile, r.event(StatusStarted, "", false)); err != nil {
			return nil, err
		}
	}
	r.pkt = astiav.AllocPacket()
	return r, nil
}

// resume puts the earlier runs' segments in the playlist.
func (r *Recorder) resume() error {
	res := r.cfg.Resume
	if res == nil {
		return nil
	}
	for _, sg := range res.Segments {
		if err := r.playlist.Append(fmt.Sprintf("%d.ts", sg.Index), sg.Duration, ""); err != nil {
			return fmt.Errorf("hls: resume playlist: %w", err)
		}
		if sg.Discontinuity {
			_ = r.playlist.SetDiscontinuity()
		}
		r.duration += sg.Duration
		r.index = max(r.index, sg.Index+1)
	}
	r.index = max(r.index, res.Next)
	return nil
}

// Handoff makes Close finish the last segment but leave the recording open
// (no EXT-X-ENDLIST, no recording-ended event) for the run that resumes
// it. It may be called from any goroutine.
func (r *Recorder) Handoff() { r.handoff.Store(true) }

func (r *Recorder) writeMultivariant() error {
	vp := r.cfg.Video.Params
	codecs := avcCodecString(vp.ExtraData())
	if r.cfg.Audio != nil {
		codecs += ",mp4a.40.2"
	}
	m := m3u8.NewMasterPlaylist()
	m.Append(r.cfg.Rendition+"/playlist.m3u8", nil, m3u8.VariantParams{
		Bandwidth:  uint32(r.cfg.Bandwidth),
		Codecs:     codecs,
		Resolution: fmt.Sprintf("%dx%d", vp.Width(), vp.Height()),
		FrameRate:  float64(r.cfg.Framerate),
	})
	return r.publish("media/hls/multivariant.m3u8", m.Encode().Bytes())
}

// publish writes a playlist atomically and announces it.
func (r *Recorder) publish(rel string, data []byte) error {
	if err := writeAtomic(filepath.Join(r.cfg.Dir, filepath.FromSlash(rel)), data); err != nil {
		return err
	}
	r.announce(rel)
	return nil
}

func (r *Recorder) announce(rel string) {
	if r.cfg.OnFile != nil {
		r.cfg.OnFile(rel)
	}
}

func (r *Recorder) rel(name string) string {
	return "media/hls/" + r.cfg.Rendition + "/" + name
}

// Write muxes one packet; video is stream 0, audio stream 1. Writes go to
// local disk and do not block on the network, so ctx is not consulted. The packet is
// not modified and may be reused by the caller once Write returns.
func (r *Recorder) Write(_ context.Context, p *astiav.Packet, stream int) error {
	err := r.write(p, stream)
	if err != nil && r.failure == nil {
		r.failure = err // the recording is incomplete: it will end with failure
	}
	if errors.Is(err, ErrDetached) {
		r.detached = true
	}
	return err
}

func (r *Recorder) write(p *astiav.Packet, stream int) error {
	if r.closed {
		return errors.New("hls: write after close")
	}
	if r.detached {
		return ErrDetached
	}
	src := r.cfg.Video.TimeBase
	if stream == 1 {
		if r.cfg.Audio == nil {
			return errors.New("hls: audio packet for a video-only recording")
		}
		src = r.cfg.Audio.TimeBase
	}
	if stream == 0 {
		t := float64(p.Pts()) * src.Float64()
		key := p.Flags().Has(astiav.PacketFlagKey)
		// Cut on a keyframe once the segment has its target duration; half
		// a frame of slack absorbs timestamp rounding.
		if key && r.mux != nil && t-r.start >= float64(r.cfg.SegmentSeconds)-0.5/float64(max(1, r.cfg.Framerate)) {
			if err := r.finishSegment(t); err != nil {
				return err
			}
		}
		if r.mux == nil {
			if !key && r.written == 0 {
				return nil // a run starts on a keyframe
			}
			if err := r.openSegment(t); err != nil {
				return err
			}
		}
		r.last = t + float64(p.Duration())*src.Float64()
		if p.Duration() == 0 && r.cfg.Framerate > 0 {
			r.last = t + 1/float64(r.cfg.Framerate)
		}
	} else if r.mux == nil {
		return nil // audio before the first video keyframe has no segment yet
	}
	if err := r.pkt.Ref(p); err != nil {
		return fmt.Errorf("hls: reference packet: %w", err)
	}
	r.pkt.SetStreamIndex(stream)
	r.pkt.RescaleTs(src, r.streams[stream].TimeBase())
	if err := r.mux.WriteInterleavedFrame(r.pkt); err != nil {
		return fmt.Errorf("hls: write to segment %d: %w", r.index, err)
	}
	return nil
}

func (r *Recorder) segmentPath(n int) string {
	return filepath.Join(r.mediaDir, fmt.Sprintf("%d.ts", n))
}

// openSegment starts segment r.index in a partial file.
func (r *Recorder) openSegment(start float64) error {
	if r.cfg.Admit != nil {
		if err := r.cfg.Admit(r.index); err != nil {
			return fmt.Errorf("hls: segment %d: %w", r.index, err)
		}
	}
	path := r.segmentPath(r.index) + ".part"
	fc, err := astiav.AllocOutputFormatContext(nil, "mpegts", path)
	if err != nil {
		return fmt.Errorf("hls: mpegts muxer: %w", err)
	}
	streams := []Stream{r.cfg.Video}
	if r.cfg.Audio != nil {
		streams = append(streams, *r.cfg.Audio)
	}
	if r.streams, err = sink.AddMuxerStreams(fc, streams...); err != nil {
		fc.Free()
		return fmt.Errorf("hls: %w", err)
	}
	pb, err := astiav.OpenIOContext(path, astiav.NewIOContextFlags(astiav.IOContextFlagWrite))
	if err != nil {
		fc.Free()
		return fmt.Errorf("hls: open %s: %w", path, err)
	}
	fc.SetPb(pb)
	if err := fc.WriteHeader(nil); err != nil {
		_ = pb.Close()
		fc.Free()
		return fmt.Errorf("hls: segment header: %w", err)
	}
	r.mux, r.start = fc, start
	return nil
}

// finishSegment closes the open segment, gives it its final name and adds it
// to the playlist, which is rewritten.
func (r *Recorder) finishSegment(end float64) error {
	fc := r.mux
	r.mux = nil
	errTrailer := fc.WriteTrailer()
	errClose := fc.Pb().Close()
	fc.Free()
	if err := errors.Join(errTrailer, errClose); err != nil {
		return fmt.Errorf("hls: finish segment %d: %w", r.index, err)
	}
	final := r.segmentPath(r.index)
	if err := os.Rename(final+".part", final); err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	sg := Segment{Index: r.index, Duration: end - r.start, Discontinuity: r.written == 0 && r.cfg.Resume != nil}
	if r.cfg.OnSegment != nil {
		if err := r.cfg.OnSegment(sg); err != nil {
			return fmt.Errorf("hls: segment %d: %w", r.index, err)
		}
	}
	r.announce(r.rel(filepath.Base(final)))
	r.duration += sg.Duration
	if err := r.playlist.Append(filepath.Base(final), sg.Duration, ""); err != nil {
		return fmt.Errorf("hls: playlist: %w", err)
	}
	if sg.Discontinuity {
		_ = r.playlist.SetDiscontinuity()
	}
	r.index++
	r.written++
	return r.writePlaylist()
}

// abandonSegment drops the open segment of a detached run.
func (r *Recorder) abandonSegment() {
	if r.mux == nil {
		return
	}
	_ = r.mux.Pb().Close()
	r.mux.Free()
	r.mux = nil
	_ = os.Remove(r.segmentPath(r.index) + ".part")
}

func (r *Recorder) writePlaylist() error {
	r.playlist.ResetCache()
	return r.publish(r.rel("playlist.m3u8"), r.playlist.Encode().Bytes())
}

// Fail marks the recording as failed: Close then writes
// events/recording-failed.json instead of recording-ended.json.
func (r *Recorder) Fail(err error) { r.failure = err }

// Close finishes the last segment, ends the playlist and writes the
// recording-ended (or recording-failed) event object.
func (r *Recorder) Close(context.Context) error {
	if r.closed {
		return nil
	}
	r.closed = true
	defer r.pkt.Free()
	if r.detached {
		r.abandonSegment()
		return nil
	}
	var err error
	if r.mux != nil {
		err = r.finishSegment(r.last)
	}
	if errors.Is(err, ErrDetached) || (r.handoff.Load() && err == nil) {
		return nil // the next run ends the playlist
	}
	r.playlist.MediaType = m3u8.VOD
	r.playlist.Close()
	err = errors.Join(err, r.writePlaylist())
	if r.failure == nil && err != nil {
		r.failure = err
	}
	if r.failure != nil {
		return errors.Join(err, r.writeEvent(eventFailedFile, r.event(StatusEndedWithFailure, r.failure.Error(), true)))
	}
	return r.writeEvent(eventEndedFile, r.event(StatusEnded, "", true))
}

// Segments is the number of segments this run finished.
func (r *Recorder) Segments() int { return r.written }

// ReadPlaylist reads the segments of a media playlist this package wrote.
func ReadPlaylist(data []byte) ([]Segment, error) {
	pl, kind, err := m3u8.Decode(*bytes.NewBuffer(data), true)
	if err != nil {
		return nil, fmt.Errorf("hls: read playlist: %w", err)
	}
	mp, ok := pl.(*m3u8.MediaPlaylist)
	if !ok || kind != m3u8.MEDIA {
		return nil, errors.New("hls: read playlist: not a media playlist")
	}
	out := make([]Segment, 0, mp.Count())
	for _, s := range mp.Segments[:mp.Count()] {
		n, err := strconv.Atoi(strings.TrimSuffix(s.URI, ".ts"))
		if err != nil || !strings.HasSuffix(s.URI, ".ts") {
			return nil, fmt.Errorf("hls: read playlist: segment %q is not <n>.ts", s.URI)
		}
		out = append(out, Segment{Index: n, Duration: s.Duration, Discontinuity: s.Discontinuity})
	}
	return out, nil
}

// avcCodecString is the RFC 6381 codec string of an H.264 stream, read from
// the SPS in its extradata (Annex B or avcC): "avc1.PPCCLL".
func avcCodecString(extra []byte) string {
	if len(extra) >= 4 && extra[0] == 1 { // avcC: version, profile, constraints, level
		return fmt.Sprintf("avc1.%02x%02x%02x", extra[1], extra[2], extra[3])
	}
	for i := 0; i+6 < len(extra); i++ {
		if extra[i] == 0 && extra[i+1] == 0 && extra[i+2] == 1 && extra[i+3]&0x1f == 7 {
			return fmt.Sprintf("avc1.%02x%02x%02x", extra[i+4], extra[i+5], extra[i+6])
		}
	}
	return "avc1.640028" // High 4.0: what players assume for 1080p when the SPS is missing
}

// writeAtomic replaces path with data so that readers (players, the
// uploader) never see a partial playlist.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	return nil
}
