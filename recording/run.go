package recording

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/safepath"
	"github.com/stagehand-rt/stagehand/internal/validation"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/thumbnail"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/store"
)

// Output is where a recording's files go: a local directory (the local
// object store's prefix, or an upload spool) and, for uploads, the queue
// and its end.
type Output struct {
	Dir    string
	OnFile func(rel string)
	// Close waits until every file is stored; nil for local storage.
	Close func(ctx context.Context) error
}

// FollowFunc follows participant pid on stage st until ctx ends, as
// stage/client.Follow with a Filter does.
type FollowFunc func(ctx context.Context, st ivs.Stage, pid string,
	onParticipants func([]stage.ParticipantInfo), onTrack func(tr *webrtc.TrackRemote, sub Subscription)) error

// Deps are what a worker lends Run.
type Deps struct {
	Store  *store.Store
	Worker string // the worker's id, recorded with the recording
	// Output opens the recording's storage.
	Output func(ctx context.Context, bucket, prefix string) (Output, error)
	Follow FollowFunc
	// StartWait is how long the participant may take to be seen
	// publishing when the job starts; default 15 s.
	StartWait time.Duration
	Log       *slog.Logger
}

// ErrEnded reports a recording that had ended before the job ran (a job
// delivered again): nothing to do.
var ErrEnded = errors.New("participant recording already ended")

// ErrInterrupted reports a recording ended by its worker shutting down
// while the participant was still publishing: it is complete and STOPPED,
// and the rest of the publish wants a new recording (Dispatcher.PublishStarted).
var ErrInterrupted = errors.New("participant recording ended by the worker's shutdown while the participant publishes")

// Run records the participant of the recording under key until it stops
// publishing and the reconnect window passes, or ctx ends (the worker
// shuts down: the recording ends there, and Run returns ErrInterrupted if
// the participant still publishes). The recording's states go to the
// store: ACTIVE once media is written, STOPPING while the last files are
// stored, then STOPPED, or FAILED with the reason.
func Run(ctx context.Context, d Deps, key string) (err error) {
	if d.StartWait <= 0 {
		d.StartWait = 15 * time.Second
	}
	rec, err := d.Store.Recordings.Update(ctx, key, func(r *ivs.ParticipantRecording) error {
		if !r.Live() {
			return ErrEnded
		}
		r.Worker = d.Worker
		return nil
	})
	if err != nil {
		return err
	}
	log := d.Log.With("component", "recording", "participant", rec.ParticipantID, "prefix", rec.Prefix)
	s := &session{d: d, key: key, rec: rec, log: log, changes: make(chan bool, 64), done: make(chan struct{})}
	defer func() {
		s.finish(context.WithoutCancel(ctx), err)
		if err == nil && ctx.Err() != nil && s.publishing() {
			err = ErrInterrupted
		}
	}()
	if err := s.open(ctx); err != nil {
		return err
	}
	return s.run(ctx)
}

// session is one recording being run.
type session struct {
	d      Deps
	key    string
	rec    ivs.ParticipantRecording
	log    *slog.Logger
	out    Output
	writer *ivsrec.Participant
	thumbs *thumbnail.Writer

	changes chan bool     // the participant publishes (true) or stopped (false)
	done    chan struct{} // closed when run no longer reads changes
	mu      sync.Mutex
	media   *media // the open run
	tracks  []stage.TrackInfo
	active  bool // ACTIVE recorded
}

func (s *session) open(ctx context.Context) error {
	out, err := s.d.Output(ctx, s.rec.BucketName, s.rec.Prefix)
	if err != nil {
		return fmt.Errorf("recording storage: %w", err)
	}
	s.out = out
	cfg := s.rec.Config
	th := cfg.ThumbnailConfiguration
	seq, latest := false, false
	if th.RecordingMode == "INTERVAL" && mediaType(cfg) != "AUDIO_ONLY" {
		for _, st := range th.Storage {
			seq = seq || st == "SEQUENTIAL"
			latest = latest || st == "LATEST"
		}
	}
	wc := ivsrec.ParticipantConfig{Dir: out.Dir, SegmentSeconds: cfg.HLSConfiguration.TargetSegmentDurationSeconds,
		HLS:                  mediaType(cfg) != "NONE",
		ThumbnailsSequential: seq, ThumbnailsLatest: latest, StageARN: s.rec.StageARN, SessionID: s.rec.SessionID,
		ParticipantID: s.rec.ParticipantID, Start: s.rec.StartTime, OnFile: out.OnFile}
	if wc.SegmentSeconds == 0 {
		wc.SegmentSeconds = ivsrec.DefaultSegmentSeconds
	}
	if s.writer, err = ivsrec.NewParticipant(wc); err != nil {
		return err
	}
	if seq || latest {
		tc := thumbnail.Config{Dir: out.Dir, Interval: time.Duration(max(1, th.TargetIntervalSeconds)) * time.Second,
			OnFile: out.OnFile}
		if seq {
			tc.SequentialDir = ivsrec.ThumbnailsDir(ivsrec.ParticipantRendition)
		}
		if latest {
			tc.LatestDir = ivsrec.LatestThumbnailDir(ivsrec.ParticipantRendition)
		}
		if s.thumbs, err = thumbnail.New(tc); err != nil {
			return err
		}
	}
	return nil
}

// run follows the participant and waits out the reconnect window.
func (s *session) run(ctx context.Context) error {
	fctx, cancel := context.WithCancel(ctx)
	followed := make(chan error, 1) // Follow's end, read once
	go func() {
		followed <- s.d.Follow(fctx, ivs.Stage{ARN: s.rec.StageARN}, s.rec.ParticipantID, s.participants, s.track)
	}()
	defer func() {
		close(s.done)
		cancel()
		if followed != nil {
			<-followed //nolint:errcheck // cancelled by the end of the recording: not its error
		}
		if err := s.endMedia(); err != nil {
			s.log.Warn("end of the last run", "error", err)
		}
	}()
	window := time.Duration(s.rec.Config.RecordingReconnectWindowSeconds) * time.Second
	timer := time.NewTimer(s.d.StartWait + window)
	defer timer.Stop()
	publishes := s.rec.Publishes
	for {
		select {
		case err := <-followed:
			followed = nil
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("following the stage: %w", err)
			}
			return nil
		case on := <-s.changes:
			timer.Stop()
			if on {
				continue
			}
			if err := s.endMedia(); err != nil {
				s.log.Warn("end of a run", "error", err)
			}
			if window == 0 {
				return nil
			}
			cur, err := s.d.Store.Recordings.Get(ctx, s.key)
			if err == nil {
				publishes = cur.Publishes
			}
			timer.Reset(window)
		case <-timer.C:
			if s.publishing() {
				continue
			}
			back, cur, err := s.stopping(ctx, publishes)
			if err != nil {
				return err
			}
			if !back {
				return nil
			}
			// The participant publishes again: the events channel will
			// say so; wait a little more for it.
			publishes = cur
			timer.Reset(5 * time.Second)
		}
	}
}

// stopping records STOPPING unless the participant published again since
// publishes was read (the dispatcher counts PUBLISH_STARTED): back.
func (s *session) stopping(ctx context.Context, publishes int) (back bool, cur int, err error) {
	_, err = s.d.Store.Recordings.Update(ctx, s.key, func(r *ivs.ParticipantRecording) error {
		back, cur = r.Publishes > publishes, r.Publishes
		if !back {
			r.State = ivs.RecordingStopping
		}
		return nil
	})
	return back, cur, err
}

func (s *session) publishing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tracks) > 0
}

// participants is Follow's report: the participant publishes, or not.
func (s *session) participants(ps []stage.ParticipantInfo) {
	var tracks []stage.TrackInfo
	for _, p := range ps {
		if p.ParticipantID == s.rec.ParticipantID {
			tracks = p.Tracks
		}
	}
	s.mu.Lock()
	was := len(s.tracks) > 0
	s.tracks = tracks
	s.mu.Unlock()
	if now := len(tracks) > 0; now != was {
		select {
		case s.changes <- now:
		case <-s.done:
		}
	}
}

// track runs a subscribed track into the open run, opening one first.
func (s *session) track(tr *webrtc.TrackRemote, sub Subscription) {
	m, err := s.currentMedia(tr.Kind() == webrtc.RTPCodecTypeVideo)
	if err != nil {
		s.log.Warn("recording run", "error", err)
		return
	}
	m.Track(tr, sub)
}

func (s *session) currentMedia(videoTrack bool) (*media, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.media != nil {
		return s.media, nil
	}
	video := videoTrack
	for _, t := range s.tracks {
		video = video || t.Kind == "video"
	}
	cfg := mediaConfig{Thumbs: s.thumbs, Video: video && mediaType(s.rec.Config) == "AUDIO_VIDEO",
		SegmentSeconds: s.writer.Config().SegmentSeconds, ParticipantID: s.rec.ParticipantID, OnActive: s.activate,
		Log: s.log}
	if s.writer.Config().HLS {
		cfg.Writer = s.writer
	}
	if s.thumbs != nil {
		s.thumbs.Rebase()
	}
	m, err := newMedia(cfg)
	if err != nil {
		return nil, err
	}
	s.media = m
	return m, nil
}

// endMedia ends the open run; its tracks have ended.
func (s *session) endMedia() error {
	s.mu.Lock()
	m := s.media
	s.media = nil
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.close()
}

// activate records ACTIVE once media is written.
func (s *session) activate() {
	s.mu.Lock()
	done := s.active
	s.active = true
	s.mu.Unlock()
	if done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.d.Store.Recordings.Update(ctx, s.key, func(r *ivs.ParticipantRecording) error {
		if r.State == ivs.RecordingStarting {
			r.State = ivs.RecordingActive
		}
		return nil
	})
	if err != nil {
		s.log.Warn("record ACTIVE", "error", err)
		return
	}
	s.log.Info("participant recording active", "since_start", time.Since(r.StartTime).Round(time.Millisecond))
}

// finish closes the recording and records its end.
func (s *session) finish(ctx context.Context, runErr error) {
	if errors.Is(runErr, ErrEnded) {
		return
	}
	_, _ = s.d.Store.Recordings.Update(ctx, s.key, func(r *ivs.ParticipantRecording) error {
		if r.Live() {
			r.State = ivs.RecordingStopping
		}
		return nil
	})
	err := runErr
	if s.writer != nil {
		err = errors.Join(err, s.writer.Close(runErr))
	}
	if s.thumbs != nil {
		s.thumbs.Close()
	}
	if s.out.Close != nil {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = errors.Join(err, s.out.Close(cctx))
		cancel()
	}
	end := time.Now().UTC().Truncate(time.Millisecond)
	_, uerr := s.d.Store.Recordings.Update(ctx, s.key, func(r *ivs.ParticipantRecording) error {
		r.State, r.EndTime = ivs.RecordingStopped, &end
		if err != nil {
			r.State, r.Reason = ivs.RecordingFailed, err.Error()
		}
		return nil
	})
	if uerr != nil {
		s.log.Warn("record the end", "error", uerr)
	}
	s.log.Info("participant recording ended", "error", err, "segments", s.segments())
}

func (s *session) segments() int {
	if s.writer == nil {
		return 0
	}
	return s.writer.Segments()
}

// LocalDir is where a recording lives in a local object store (or a
// spool) under root. The bucket and prefix come from the store, so they
// are checked with the API's rules, and the result is proven to stay under
// root, before anything is written there.
func LocalDir(root, bucket, prefix string) (string, error) {
	if err := validation.BucketName("bucketName", bucket); err != nil {
		return "", err
	}
	if err := validation.KeyPrefix("recordingPrefix", prefix); err != nil {
		return "", err
	}
	return safepath.Join(root, bucket, prefix)
}
