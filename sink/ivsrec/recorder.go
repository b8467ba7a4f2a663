package ivsrec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
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
)

// Stream is one encoded stream the recorder muxes.
type Stream = sink.Stream

// Config describes one composite recording: a Recorder.
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

// ErrDetached says, wrapped in an OnSegment or Admit error, that another
// run took the recording over: this run writes nothing more, and Close
// leaves the recording's files to that run.
var ErrDetached = errors.New("ivsrec: the recording was taken over by another run")

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
		return errors.New("ivsrec: a directory and a rendition name are required")
	}
	if s := c.SegmentSeconds; s != 0 && (s < MinSegmentSeconds || s > MaxSegmentSeconds) {
		return fmt.Errorf("ivsrec: targetSegmentDurationSeconds %d is outside %d..%d", s, MinSegmentSeconds,
			MaxSegmentSeconds)
	}
	if c.Video.Params == nil || c.Video.Params.MediaType() != astiav.MediaTypeVideo {
		return errors.New("ivsrec: a video stream is required")
	}
	return nil
}

// Recorder records a composite: an encoded H.264/AAC stream as one
// rendition of MPEG-TS segments, cut on the first video keyframe at or
// after the target segment duration (the encoder places keyframes on
// segment boundaries, so segments last exactly the target). The media
// playlist is rewritten each time a segment is complete, as an EVENT
// playlist; Close finishes the last segment and ends it with
// EXT-X-ENDLIST.
//
// A recording can span several runs (a composition moved to another
// worker): a run started with Config.Resume keeps the earlier segments in
// the playlist and continues after an EXT-X-DISCONTINUITY with the next
// unused segment number, and a run that is handed off (Handoff) finishes
// its last segment without ending the playlist.
//
// It is not safe for concurrent use: one goroutine (the destination's)
// feeds it.
type Recorder struct {
	cfg      Config
	out      Output
	playlist *playlist
	format   format // MPEG-TS

	seg      *segmentFile // the open segment; nil between segments
	index    int          // number of the open (or next) segment
	written  int          // segments this run finished
	start    float64      // video time at which the open segment began, seconds
	last     float64      // video time of the end of the last video packet written, seconds
	closed   bool
	handoff  atomic.Bool // Close leaves the recording open for the next run
	detached bool        // another run owns the recording (ErrDetached)

	startedAt time.Time
	failure   error // set by Fail: the recording ends with failure
}

// New creates the directories and the multivariant playlist.
func New(cfg Config) (_ *Recorder, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SegmentSeconds == 0 {
		cfg.SegmentSeconds = DefaultSegmentSeconds
	}
	r := &Recorder{cfg: cfg, out: Output{Dir: cfg.Dir, OnFile: cfg.OnFile}, start: math.NaN(), startedAt: time.Now()}
	streams := []Stream{cfg.Video}
	if cfg.Audio != nil {
		streams = append(streams, *cfg.Audio)
	}
	if r.format, err = newMPEGTS(streams...); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = r.format.close()
		}
	}()
	if r.playlist, err = newPlaylist(cfg.SegmentSeconds, r.format.version()); err != nil {
		return nil, err
	}
	if err := r.out.mkdirs(cfg.Rendition); err != nil {
		return nil, err
	}
	if err := r.resume(); err != nil {
		return nil, err
	}
	if err := r.writeMultivariant(); err != nil {
		return nil, err
	}
	if cfg.Resume == nil {
		if err := r.out.writeEvent(r.event(StatusStarted, nil)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// resume puts the earlier runs' segments in the playlist.
func (r *Recorder) resume() error {
	res := r.cfg.Resume
	if res == nil {
		return nil
	}
	for _, sg := range res.Segments {
		if err := r.playlist.add(sg.media()); err != nil {
			return fmt.Errorf("ivsrec: resume: %w", err)
		}
		r.index = max(r.index, sg.Index+1)
	}
	r.index = max(r.index, res.Next)
	return nil
}

// media is the playlist entry of the segment.
func (s Segment) media() *m3u8.MediaSegment {
	return &m3u8.MediaSegment{URI: strconv.Itoa(s.Index) + tsExt, Duration: s.Duration, Discontinuity: s.Discontinuity}
}

// Handoff makes Close finish the last segment but leave the recording open
// (no EXT-X-ENDLIST, no recording-ended event) for the run that resumes
// it. It may be called from any goroutine.
func (r *Recorder) Handoff() { r.handoff.Store(true) }

func (r *Recorder) writeMultivariant() error {
	vp := r.cfg.Video.Params
	codecs := AVCCodec(vp.ExtraData())
	if r.cfg.Audio != nil {
		codecs += "," + AACCodec
	}
	return r.out.Publish(MultivariantPath, multivariant(r.cfg.Rendition, m3u8.VariantParams{
		Bandwidth:  uint32(r.cfg.Bandwidth),
		Codecs:     codecs,
		Resolution: fmt.Sprintf("%dx%d", vp.Width(), vp.Height()),
		FrameRate:  float64(r.cfg.Framerate),
	}, 0))
}

// event is the recording's event object in status; a failure ends it.
func (r *Recorder) event(status string, failure error) event {
	e := newEvent(r.cfg.StageARN, r.startedAt, status, failure)
	vp := r.cfg.Video.Params
	e.withHLS(r.cfg.Rendition, vp.Width(), vp.Height())
	return e
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
		return errors.New("ivsrec: write after close")
	}
	if r.detached {
		return ErrDetached
	}
	src := r.cfg.Video.TimeBase
	if stream == 1 {
		if r.cfg.Audio == nil {
			return errors.New("ivsrec: audio packet for a video-only recording")
		}
		src = r.cfg.Audio.TimeBase
	}
	if stream == 0 {
		t := float64(p.Pts()) * src.Float64()
		key := p.Flags().Has(astiav.PacketFlagKey)
		// Cut on a keyframe once the segment has its target duration; half
		// a frame of slack absorbs timestamp rounding.
		if key && r.seg != nil && t-r.start >= float64(r.cfg.SegmentSeconds)-0.5/float64(max(1, r.cfg.Framerate)) {
			if err := r.finishSegment(t); err != nil {
				return err
			}
		}
		if r.seg == nil {
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
	} else if r.seg == nil {
		return nil // audio before the first video keyframe has no segment yet
	}
	if err := r.seg.write(r.format, p, stream); err != nil {
		return fmt.Errorf("ivsrec: write to segment %d: %w", r.index, err)
	}
	return nil
}

// openSegment starts segment r.index.
func (r *Recorder) openSegment(start float64) error {
	if r.cfg.Admit != nil {
		if err := r.cfg.Admit(r.index); err != nil {
			return fmt.Errorf("ivsrec: segment %d: %w", r.index, err)
		}
	}
	seg, err := openSegment(r.format, r.out.path(SegmentPath(r.cfg.Rendition, r.index)))
	if err != nil {
		return fmt.Errorf("ivsrec: segment %d: %w", r.index, err)
	}
	r.seg, r.start = seg, start
	return nil
}

// finishSegment closes the open segment, gives it its final name and adds it
// to the playlist, which is rewritten.
func (r *Recorder) finishSegment(end float64) error {
	seg := r.seg
	r.seg = nil
	if _, err := seg.finish(r.format); err != nil {
		return fmt.Errorf("ivsrec: finish segment %d: %w", r.index, err)
	}
	sg := Segment{Index: r.index, Duration: end - r.start, Discontinuity: r.written == 0 && r.cfg.Resume != nil}
	if r.cfg.OnSegment != nil {
		if err := r.cfg.OnSegment(sg); err != nil {
			return fmt.Errorf("ivsrec: segment %d: %w", r.index, err)
		}
	}
	r.out.announce(SegmentPath(r.cfg.Rendition, r.index))
	if err := r.playlist.add(sg.media()); err != nil {
		return err
	}
	r.index++
	r.written++
	return r.writePlaylist()
}

// abandonSegment drops the open segment of a detached run.
func (r *Recorder) abandonSegment() {
	if r.seg == nil {
		return
	}
	r.seg.abandon()
	r.seg = nil
}

func (r *Recorder) writePlaylist() error {
	return r.out.Publish(PlaylistPath(r.cfg.Rendition), r.playlist.encode())
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
	defer r.format.close()
	if r.detached {
		r.abandonSegment()
		return nil
	}
	var err error
	if r.seg != nil {
		err = r.finishSegment(r.last)
	}
	if errors.Is(err, ErrDetached) || (r.handoff.Load() && err == nil) {
		return nil // the next run ends the playlist
	}
	r.playlist.end()
	err = errors.Join(err, r.writePlaylist())
	if r.failure == nil && err != nil {
		r.failure = err
	}
	status := StatusEnded
	if r.failure != nil {
		status = StatusEndedWithFailure
	}
	e := r.event(status, r.failure)
	e.ended(time.Duration(r.playlist.duration * float64(time.Second)))
	return errors.Join(err, r.out.writeEvent(e))
}

// Segments is the number of segments this run finished.
func (r *Recorder) Segments() int { return r.written }
