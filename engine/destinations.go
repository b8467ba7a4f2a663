package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/rtmp"
	"github.com/stagehand-rt/stagehand/sink/thumbnail"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// Destination is one output of a composition: an RTMP(S) channel or an HLS
// recording.
type Destination struct {
	Name      string // the IVS destination id, in states and logs
	RTMP      *RTMP
	Recording *Recording
}

// RTMP is a channel's ingest.
type RTMP struct {
	URL      string        // rtmp:// or rtmps://, with the stream key
	CAFile   string        // CA bundle for RTMPS; default the system's
	RetryFor time.Duration // how long a lost connection is retried; default sink's
}

// Recording is an HLS recording in the IVS S3 layout under Dir.
type Recording struct {
	Dir string // the recording prefix on local disk: the bucket's, or the upload's spool
	// Rendition names the rendition folder; default DefaultRendition.
	Rendition string
	// Upload, when set, uploads what is written under Dir to S3; segments
	// and playlists wait in Dir until S3 has them, so an object-store
	// outage loses nothing.
	Upload *upload.Config
	Resume *ivsrec.Resume // continues an earlier run's recording
	Hooks  Hooks
	// Thumbnails, when set, writes JPEGs of the composite.
	Thumbnails *Thumbnails
}

// Hooks connect a recording to its composition's bookkeeping; each may be nil.
type Hooks struct {
	Admit       func(index int) error      // see ivsrec.Config.Admit
	OnSegment   func(ivsrec.Segment) error // see ivsrec.Config.OnSegment
	OnUploaded  func(upload.Uploaded)      // see upload.Config.OnUploaded
	OnThumbnail func(next int)             // a sequential thumbnail was written; next is the following number
}

// Thumbnails asks for thumbnails of the composite, as IVS lays them out:
// media/thumbnails/<rendition>/<n>.jpg and media/latest_thumbnail/<rendition>/thumb.jpg.
type Thumbnails struct {
	Interval   time.Duration
	Sequential bool
	Latest     bool
	FirstIndex int // the number of the first sequential thumbnail
}

// DefaultRendition names a rendition folder after the video: <height>p<fps>.
func DefaultRendition(v encoder.VideoConfig) string {
	return fmt.Sprintf("%dp%d", v.Height, v.Framerate)
}

// destinations builds the sink writers the configuration asks for.
func (e *Engine) destinations(ctx context.Context) ([]sink.Config, error) {
	var dests []sink.Config
	for _, d := range e.cfg.Destinations {
		var dc sink.Config
		var err error
		switch {
		case d.RTMP != nil:
			dc, err = e.channel(d.Name, *d.RTMP)
		case d.Recording != nil:
			dc, err = e.recording(ctx, d.Name, *d.Recording)
		default:
			err = errors.New("no RTMP channel or recording")
		}
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.Name, err)
		}
		dests = append(dests, dc)
	}
	return dests, nil
}

func (e *Engine) channel(name string, c RTMP) (sink.Config, error) {
	w, err := rtmp.New(rtmp.Config{URL: c.URL, CAFile: c.CAFile,
		Video: rtmp.Stream{Params: e.vparams, TimeBase: e.venc.TimeBase()},
		Audio: &rtmp.Stream{Params: e.aparams, TimeBase: e.aenc.TimeBase()}})
	if err != nil {
		return sink.Config{}, err
	}
	return sink.Config{Name: name, Writer: w, RetryFor: c.RetryFor, Logger: e.log}, nil
}

func (e *Engine) recording(ctx context.Context, name string, r Recording) (sink.Config, error) {
	if r.Rendition == "" {
		r.Rendition = DefaultRendition(e.cfg.Video)
	}
	var onFile func(string)
	if r.Upload != nil {
		uc := *r.Upload
		uc.OnUploaded = r.Hooks.OnUploaded
		uc.Logger = e.log
		up, err := upload.Start(ctx, uc)
		if err != nil {
			return sink.Config{}, err
		}
		e.uploaders = append(e.uploaders, up)
		onFile = up.Enqueue
	}
	rec, err := ivsrec.New(ivsrec.Config{
		OnFile: onFile, Resume: r.Resume, Admit: r.Hooks.Admit, OnSegment: r.Hooks.OnSegment,
		Dir: r.Dir, Rendition: r.Rendition, SegmentSeconds: e.cfg.SegmentSeconds, Framerate: e.cfg.Video.Framerate,
		Bandwidth: e.cfg.Video.Bitrate + encoder.DefaultAudioBitrate, StageARN: e.cfg.StageARN,
		Video: ivsrec.Stream{Params: e.vparams, TimeBase: e.venc.TimeBase()},
		Audio: &ivsrec.Stream{Params: e.aparams, TimeBase: e.aenc.TimeBase()},
	})
	if err != nil {
		return sink.Config{}, err
	}
	e.recorders = append(e.recorders, rec)
	if r.Thumbnails != nil {
		th, err := e.thumbnails(r, onFile)
		if err != nil {
			return sink.Config{}, err
		}
		e.thumbs = append(e.thumbs, th)
	}
	// Recordings must not lose packets: a deep queue absorbs disk stalls.
	return sink.Config{Name: name, Writer: rec, QueueSize: 4096, Logger: e.log}, nil
}

// thumbnails writes r's thumbnails; onFile announces them to the upload.
func (e *Engine) thumbnails(r Recording, onFile func(string)) (*thumbnail.Writer, error) {
	t := r.Thumbnails
	tc := thumbnail.Config{Dir: r.Dir, Interval: max(time.Second, t.Interval), FirstIndex: t.FirstIndex}
	if t.Sequential {
		tc.SequentialDir = ivsrec.ThumbnailsDir(r.Rendition)
	}
	if t.Latest {
		tc.LatestDir = ivsrec.LatestThumbnailDir(r.Rendition)
	}
	var th *thumbnail.Writer
	onSequential := r.Hooks.OnThumbnail
	tc.OnFile = func(rel string) {
		if onFile != nil {
			onFile(rel)
		}
		if onSequential != nil && tc.SequentialDir != "" && strings.HasPrefix(rel, tc.SequentialDir+"/") {
			onSequential(th.Next() + 1) // Next counts the file after it is announced
		}
	}
	th, err := thumbnail.New(tc)
	return th, err
}
