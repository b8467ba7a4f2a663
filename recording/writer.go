package recording

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/sink"
)

// rendition is the one rendition folder of an individual recording.
const rendition = "high"

// WriterConfig describes one individual recording on local disk.
type WriterConfig struct {
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

// Writer writes an individual recording: HLS with fMP4 segments under
// media/hls/high/, one run per publishing span of the participant (a
// reconnect within the window adds a run after EXT-X-DISCONTINUITY), and
// the event objects. Methods may be called from several goroutines.
type Writer struct {
	cfg      WriterConfig
	mediaDir string

	mu       sync.Mutex
	pl       playlist
	runs     int // runs begun
	segments int // segment files written
	run      *runState
	closed   bool
}

// runState is the open run.
type runState struct {
	mux      *fmp4
	video    bool // stream 0 is video: cut on its keyframes
	fps      int
	start    time.Time // wall-clock time of media time 0
	init     string
	first    bool    // the next segment is the run's first
	segStart float64 // media time the open segment began, seconds; NaN before the first packet
	last     float64 // end of the last packet, seconds
}

// NewWriter creates the folders and writes events/recording-started.json.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	w := &Writer{cfg: cfg, mediaDir: filepath.Join(cfg.Dir, "media", "hls", rendition), pl: playlist{target: cfg.SegmentSeconds}}
	for _, d := range []string{filepath.Join(cfg.Dir, "events"), w.mediaDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
	}
	ev, err := w.eventFor(statusStarted, "", false)
	if err != nil {
		return nil, err
	}
	if err := w.publish("events/recording-started.json", ev); err != nil {
		return nil, err
	}
	return w, nil
}

// RunConfig describes the streams of one run.
type RunConfig struct {
	Streams []sink.Stream // video first, if any
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
func (w *Writer) BeginRun(rc RunConfig) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("recording: begin run after close")
	}
	if w.run != nil {
		return errors.New("recording: a run is open")
	}
	mux, init, err := openFMP4(rc.Streams...)
	if err != nil {
		return fmt.Errorf("recording: run %d: %w", w.runs, err)
	}
	name := "init-" + strconv.Itoa(w.runs) + ".mp4"
	if err := w.publish(w.rel(name), init); err != nil {
		mux.free()
		return err
	}
	if err := w.publish("media/hls/multivariant.m3u8", multivariant(rc.Bandwidth, rc.Codecs, rc.Width, rc.Height)); err != nil {
		mux.free()
		return err
	}
	w.runs++
	w.run = &runState{mux: mux, video: rc.Video, fps: max(1, rc.FPS), start: rc.Start, init: name, first: true, segStart: -1}
	return nil
}

// Write muxes one packet of stream i of the open run, in the time base its
// RunConfig gave; key marks a video keyframe. Packets before the run's
// first video keyframe are dropped: segments start on keyframes.
func (w *Writer) Write(p *astiav.Packet, i int, tb astiav.Rational, key bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.run
	if r == nil {
		return nil
	}
	t := float64(p.Pts()) * tb.Float64()
	cutter := (r.video && i == 0) || !r.video
	if cutter {
		switch {
		case r.segStart < 0:
			if r.video && !key {
				return nil
			}
			r.segStart = t
		case (key || !r.video) && t-r.segStart >= float64(w.cfg.SegmentSeconds)-0.5/float64(r.fps):
			if err := w.cut(t); err != nil {
				return err
			}
			r.segStart = t
		}
		end := t + float64(p.Duration())*tb.Float64()
		if p.Duration() == 0 && r.video {
			end = t + 1/float64(r.fps)
		}
		r.last = max(r.last, end)
	} else if r.segStart < 0 {
		return nil
	}
	return r.mux.write(p, i)
}

// cut ends the open segment at media time end and adds it to the playlist.
func (w *Writer) cut(end float64) error {
	r := w.run
	data, err := r.mux.cut()
	if err != nil || data == nil {
		return err
	}
	name := strconv.Itoa(w.segments) + ".mp4"
	if err := w.publish(w.rel(name), data); err != nil {
		return err
	}
	s := segment{name: name, duration: max(0, end-r.segStart)}
	if r.first {
		s.init, s.discontinuity = r.init, w.runs > 1
		s.start = r.start.Add(time.Duration(r.segStart * float64(time.Second)))
		r.first = false
	}
	w.pl.add(s)
	w.segments++
	return w.publish(w.rel("playlist.m3u8"), w.pl.encode())
}

// EndRun finishes the open run's last segment.
func (w *Writer) EndRun() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.endRun()
}

func (w *Writer) endRun() error {
	r := w.run
	if r == nil {
		return nil
	}
	var err error
	if r.segStart >= 0 {
		err = w.cut(r.last)
	}
	w.run = nil
	return errors.Join(err, r.mux.close())
}

// Segments is the number of segments written.
func (w *Writer) Segments() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.segments
}

// Close ends the open run and the playlist (EXT-X-ENDLIST), and writes
// events/recording-ended.json, or recording-failed.json when failure is
// set.
func (w *Writer) Close(failure error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.endRun()
	if w.cfg.HLS {
		w.pl.ended = true
		err = errors.Join(err, w.publish(w.rel("playlist.m3u8"), w.pl.encode()))
	}
	if failure == nil && err != nil {
		failure = err
	}
	if failure != nil {
		ev, eerr := w.eventFor(statusEndedWithFailure, failure.Error(), true)
		return errors.Join(err, eerr, w.publish("events/recording-failed.json", ev))
	}
	ev, eerr := w.eventFor(statusEnded, "", true)
	return errors.Join(eerr, w.publish("events/recording-ended.json", ev))
}

func (w *Writer) rel(name string) string { return "media/hls/" + rendition + "/" + name }

// publish writes a file atomically (players and the uploader never see
// part of one) and announces it.
func (w *Writer) publish(rel string, data []byte) error {
	p := filepath.Join(w.cfg.Dir, filepath.FromSlash(rel))
	if err := os.WriteFile(p+".tmp", data, 0o644); err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	if w.cfg.OnFile != nil {
		w.cfg.OnFile(rel)
	}
	return nil
}
