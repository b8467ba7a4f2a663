package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stagehand-rt/stagehand/engine"
	"github.com/stagehand-rt/stagehand/internal/validation"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// A composition's S3 recordings outlive the worker that runs it: the
// worker keeps each recording's ivs.RecordingRun in the store (the segment
// numbers it reserved, the segments no uploaded playlist names yet), and a
// worker that resumes the composition continues the same playlist from
// there, after an EXT-X-DISCONTINUITY.
//
// Guarantees: no segment number is used twice (a run reserves a number in
// the store before it writes that segment, and only while it owns the
// composition); every segment a run finished and recorded stays in the
// playlist, even when it was still in a dead worker's spool (it is
// uploaded when that worker restarts on its data directory). Not
// guaranteed: the media between a killed worker's last finished segment
// and the resumed run's first (the open segment is lost, and nothing is
// recorded while no worker runs the composition), and spooled segments of
// a worker whose data directory is lost.

// errLostClaim ends a run whose composition another worker took over.
var errLostClaim = errors.New("another worker took the composition over")

// ledgerTimeout bounds one store update of a recording's bookkeeping.
const ledgerTimeout = 5 * time.Second

// ledger is one run's bookkeeping of one S3 destination's recording.
type ledger struct {
	w         *Worker
	compID    string
	destID    string
	rendition string
	uploads   bool   // segments wait in the spool until stored
	lost      func() // called once the claim is found lost
	log       *slog.Logger
}

// update changes the recording's RecordingRun while this worker owns the
// composition.
func (l *ledger) update(change func(*ivs.RecordingRun)) error {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
	defer cancel()
	_, err := l.w.store.Compositions.Update(ctx, l.compID, func(cp *ivs.Composition) error {
		if cp.Run == nil || cp.Run.Worker != l.w.cfg.ID {
			return errLostClaim
		}
		if cp.Run.Recordings == nil {
			cp.Run.Recordings = map[string]*ivs.RecordingRun{}
		}
		r := cp.Run.Recordings[l.destID]
		if r == nil {
			r = &ivs.RecordingRun{}
			cp.Run.Recordings[l.destID] = r
		}
		if r.Rendition != l.rendition {
			*r = ivs.RecordingRun{Rendition: l.rendition} // a new folder: numbering starts over
		}
		change(r)
		return nil
	})
	return err
}

// check turns an update's error into the recorder's: a lost claim detaches
// the recording (and ends the run); the store being unreachable does not
// stop a recording, it is logged.
func (l *ledger) check(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errLostClaim):
		l.lost()
		return fmt.Errorf("%w: %w", ivsrec.ErrDetached, errLostClaim)
	default:
		l.log.Warn("cannot record the recording's progress; recording on", "step", what, "error", err)
		return nil
	}
}

// admit reserves segment number index.
func (l *ledger) admit(index int) error {
	if l.uploads {
		if err := l.w.spool.admit(); err != nil {
			return err
		}
	}
	return l.check("reserve segment", l.update(func(r *ivs.RecordingRun) { r.Next = max(r.Next, index+1) }))
}

// segment records a finished segment that waits in the spool.
func (l *ledger) segment(s ivsrec.Segment, size int64) error {
	if !l.uploads {
		return nil
	}
	l.w.spool.add(size)
	return l.check("record segment", l.update(func(r *ivs.RecordingRun) {
		r.Spooled = append(r.Spooled, ivs.RecordedSegment(s))
	}))
}

// uploaded forgets the spooled segments an uploaded playlist names.
func (l *ledger) uploaded(up upload.Uploaded) {
	l.w.metrics.uploadDelay.Observe(up.Delay.Seconds())
	if strings.HasSuffix(up.Rel, ".ts") {
		l.w.spool.done(up.Size)
		return
	}
	if up.Rel != ivsrec.PlaylistPath(l.rendition) {
		return
	}
	segs, err := ivsrec.ReadPlaylist(up.Playlist)
	if err != nil || len(segs) == 0 {
		return
	}
	last := segs[len(segs)-1].Index
	err = l.update(func(r *ivs.RecordingRun) {
		r.Spooled = slices.DeleteFunc(r.Spooled, func(s ivs.RecordedSegment) bool { return s.Index <= last })
	})
	if err != nil && !errors.Is(err, errLostClaim) {
		l.log.Warn("cannot record uploaded segments", "error", err)
	}
}

// hooks connect an S3 output's recorder and uploader to the ledger.
func (l *ledger) hooks(dir string) engine.Hooks {
	return engine.Hooks{
		Admit: l.admit,
		OnSegment: func(s ivsrec.Segment) error {
			var size int64
			if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(ivsrec.SegmentPath(l.rendition, s.Index)))); err == nil {
				size = fi.Size()
			}
			return l.segment(s, size)
		},
		OnUploaded: l.uploaded,
		OnThumbnail: func(next int) {
			_ = l.check("record thumbnail", l.update(func(r *ivs.RecordingRun) { r.NextThumbnail = next }))
		},
	}
}

// resumePoint is where destination dest's recording rec continues: the
// rendition and segments of the earlier runs (nil Resume: a fresh
// recording). When the earlier playlist cannot be read, the run records into
// a new rendition folder beside it, so nothing is overwritten.
func (w *Worker) resumePoint(ctx context.Context, run *ivs.RecordingRun, dest string, rec *engine.Recording,
	log *slog.Logger) (string, *ivsrec.Resume) {
	if run == nil || run.Rendition == "" {
		return "", nil
	}
	// The rendition names a folder under the recording's: one read from
	// the store that could leave it is not continued.
	if err := validation.KeyPrefix("rendition", run.Rendition); err != nil {
		log.Warn("refusing the stored rendition; recording into a new rendition folder", "destination", dest,
			"error", err)
		return "", nil
	}
	data, err := w.readPlaylist(ctx, rec, ivsrec.PlaylistPath(run.Rendition))
	if err != nil {
		log.Warn("cannot read the recording's playlist; recording into a new rendition folder",
			"destination", dest, "rendition", run.Rendition, "error", err)
		return "", nil
	}
	var segs []ivsrec.Segment
	if data != nil {
		if segs, err = ivsrec.ReadPlaylist(data); err != nil {
			log.Warn("unreadable playlist; recording into a new rendition folder", "destination", dest, "error", err)
			return "", nil
		}
	}
	return run.Rendition, &ivsrec.Resume{Segments: merge(segs, run.Spooled), Next: run.Next}
}

// merge adds the spooled segments the playlist does not name yet.
func merge(segs []ivsrec.Segment, spooled []ivs.RecordedSegment) []ivsrec.Segment {
	named := map[int]bool{}
	for _, s := range segs {
		named[s.Index] = true
	}
	for _, s := range spooled {
		if !named[s.Index] {
			segs = append(segs, ivsrec.Segment(s))
		}
	}
	slices.SortStableFunc(segs, func(a, b ivsrec.Segment) int { return a.Index - b.Index })
	return segs
}

// readPlaylist reads rec's stored playlist at rel; nil when there is
// none yet. The object store is retried for a while: an outage at resume
// time should not split the recording.
func (w *Worker) readPlaylist(ctx context.Context, rec *engine.Recording, rel string) ([]byte, error) {
	if rec.Upload == nil {
		b, err := os.ReadFile(filepath.Join(rec.Dir, filepath.FromSlash(rel)))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return b, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.ResumeReadTimeout)
	defer cancel()
	key := path.Join(rec.Upload.Prefix, rel)
	for {
		b, err := upload.Get(ctx, rec.Upload.Client, rec.Upload.Bucket, key)
		switch {
		case err == nil:
			return b, nil
		case errors.Is(err, upload.ErrNoObject):
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Second):
		}
	}
}
