package ivsrec

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/grafov/m3u8"
)

// ParticipantRendition is the one rendition folder of an individual
// participant recording: its HLS and its thumbnails.
const ParticipantRendition = "high"

// ParticipantConfig describes one individual participant recording on
// local disk.
type ParticipantConfig struct {
	Dir            string // the recording prefix on local disk
	SegmentSeconds int    // target segment duration, 2..10
	// HLS: media is recorded (not with mediaTypes NONE).
	HLS bool
	// What the event objects list.
	ThumbnailsSequential, ThumbnailsLatest bool
	StageARN, SessionID, ParticipantID     string
	Start                                  time.Time // the recording's start
	// OnFile is told of every complete file, relative to Dir with slashes:
	// the uploader's queue.
	OnFile func(rel string)
}

// Participant writes an individual participant recording: HLS with fMP4
// segments under media/hls/high/, one run per publishing span of the
// participant (a reconnect within the window adds a run after
// EXT-X-DISCONTINUITY, with its own init segment and
// EXT-X-PROGRAM-DATE-TIME so that recordings of several participants can
// be aligned), and the event objects. Methods may be called from several
// goroutines.
type Participant struct {
	cfg ParticipantConfig
	out Output

	mu       sync.Mutex
	pl       *playlist
	runs     int // runs begun
	segments int // segment files written
	run      *runState
	closed   bool
}

// runState is the open run.
type runState struct {
	format   *fmp4
	seg      *segmentFile // the open segment; nil before the run's first packet
	video    bool         // stream 0 is video: cut on its keyframes
	fps      int
	start    time.Time // wall-clock time of media time 0
	init     string
	first    bool    // the next segment is the run's first
	segStart float64 // media time the open segment began, seconds
	last     float64 // end of the last packet, seconds
}

// NewParticipant creates the folders and writes
// events/recording-started.json.
func NewParticipant(cfg ParticipantConfig) (*Participant, error) {
	w := &Participant{cfg: cfg, out: Output{Dir: cfg.Dir, OnFile: cfg.OnFile}}
	var err error
	if w.pl, err = newPlaylist(cfg.SegmentSeconds, fmp4Version); err != nil {
		return nil, err
	}
	if err := w.out.mkdirs(ParticipantRendition); err != nil {
		return nil, err
	}
	if err := w.out.writeEvent(w.event(StatusStarted, nil)); err != nil {
		return nil, err
	}
	return w, nil
}

// Config is the configuration the recording was created with.
func (w *Participant) Config() ParticipantConfig { return w.cfg }

// RunConfig describes the streams of one run.
type RunConfig struct {
	Streams []Stream // video first, if any
	Video   bool
	FPS     int       // of the video, for the half-frame slack of cuts
	Start   time.Time // wall-clock time of media time 0
	// Codecs, Width, Height and Bandwidth go to the multivariant playlist.
	Codecs        string
	Width, Height int
	Bandwidth     int
}

// BeginRun opens a run: its init segment init-<k>.mp4 is written, and the
// multivariant playlist (again: a reconnect may change the resolution).
func (w *Participant) BeginRun(rc RunConfig) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("ivsrec: begin run after close")
	}
	if w.run != nil {
		return errors.New("ivsrec: a run is open")
	}
	fm, err := newFMP4(rc.Streams...)
	if err != nil {
		return fmt.Errorf("ivsrec: run %d: %w", w.runs, err)
	}
	name := "init-" + strconv.Itoa(w.runs) + mp4Ext
	v := m3u8.VariantParams{Bandwidth: uint32(rc.Bandwidth), Codecs: rc.Codecs}
	if rc.Width > 0 {
		v.Resolution = fmt.Sprintf("%dx%d", rc.Width, rc.Height)
	}
	err = w.out.Publish(w.rel(name), fm.init())
	if err == nil {
		err = w.out.Publish(MultivariantPath, multivariant(ParticipantRendition, v, fm.version()))
	}
	if err != nil {
		_ = fm.close()
		return err
	}
	w.runs++
	w.run = &runState{format: fm, video: rc.Video, fps: max(1, rc.FPS), start: rc.Start, init: name, first: true}
	return nil
}

// Write muxes one packet of stream i of the open run, in the time base its
// RunConfig gave; key marks a video keyframe. Packets before the run's
// first video keyframe are dropped: segments start on keyframes.
func (w *Participant) Write(p *astiav.Packet, i int, tb astiav.Rational, key bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.run
	if r == nil {
		return nil
	}
	t := float64(p.Pts()) * tb.Float64()
	if cutter := (r.video && i == 0) || !r.video; cutter {
		switch {
		case r.seg == nil:
			if r.video && !key {
				return nil
			}
			if err := w.open(t); err != nil {
				return err
			}
		case (key || !r.video) && t-r.segStart >= float64(w.cfg.SegmentSeconds)-0.5/float64(r.fps):
			if err := w.cut(t); err != nil {
				return err
			}
			if err := w.open(t); err != nil {
				return err
			}
		}
		end := t + float64(p.Duration())*tb.Float64()
		if p.Duration() == 0 && r.video {
			end = t + 1/float64(r.fps)
		}
		r.last = max(r.last, end)
	} else if r.seg == nil {
		return nil
	}
	return r.seg.write(r.format, p, i)
}

// open starts the run's next segment at media time start.
func (w *Participant) open(start float64) error {
	r := w.run
	seg, err := openSegment(r.format, w.out.path(w.rel(strconv.Itoa(w.segments)+mp4Ext)))
	if err != nil {
		return err
	}
	r.seg, r.segStart = seg, start
	return nil
}

// cut ends the open segment at media time end and adds it to the playlist.
func (w *Participant) cut(end float64) error {
	r := w.run
	seg := r.seg
	r.seg = nil
	if ok, err := seg.finish(r.format); !ok {
		return err
	}
	name := strconv.Itoa(w.segments) + mp4Ext
	w.out.announce(w.rel(name))
	s := &m3u8.MediaSegment{URI: name, Duration: max(0, end-r.segStart)}
	if r.first {
		s.Map, s.Discontinuity = &m3u8.Map{URI: r.init}, w.runs > 1
		s.ProgramDateTime = r.start.Add(time.Duration(r.segStart * float64(time.Second))).UTC().Truncate(time.Millisecond)
		r.first = false
	}
	if err := w.pl.add(s); err != nil {
		return err
	}
	w.segments++
	return w.out.Publish(w.rel(playlistName), w.pl.encode())
}

// EndRun finishes the open run's last segment.
func (w *Participant) EndRun() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.endRun()
}

func (w *Participant) endRun() error {
	r := w.run
	if r == nil {
		return nil
	}
	var err error
	if r.seg != nil {
		err = w.cut(r.last)
	}
	w.run = nil
	return errors.Join(err, r.format.close())
}

// Segments is the number of segments written.
func (w *Participant) Segments() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.segments
}

// Close ends the open run and the playlist (EXT-X-ENDLIST), and writes
// events/recording-ended.json, or recording-failed.json when failure is
// set.
func (w *Participant) Close(failure error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.endRun()
	if w.cfg.HLS {
		w.pl.end()
		err = errors.Join(err, w.out.Publish(w.rel(playlistName), w.pl.encode()))
	}
	if failure == nil && err != nil {
		failure = err
	}
	status := StatusEnded
	if failure != nil {
		status = StatusEndedWithFailure
	}
	e := w.event(status, failure)
	e.ended(time.Duration(w.pl.duration * float64(time.Second)))
	return errors.Join(err, w.out.writeEvent(e))
}

// event is the recording's event object in status; a failure ends it.
func (w *Participant) event(status string, failure error) event {
	c := w.cfg
	e := newEvent(c.StageARN, c.Start, status, failure)
	e.SessionID, e.ParticipantID = c.SessionID, c.ParticipantID
	if c.HLS {
		e.withHLS(ParticipantRendition, 0, 0)
	}
	e.withThumbnails(ParticipantRendition, c.ThumbnailsSequential, c.ThumbnailsLatest)
	return e
}

func (w *Participant) rel(name string) string { return RenditionDir(ParticipantRendition) + "/" + name }
