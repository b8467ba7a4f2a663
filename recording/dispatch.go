// Package recording records stage participants on their own, as IVS's
// individual participant recording does (a stage's
// autoParticipantRecordingConfiguration): when a participant starts
// publishing, the Dispatcher records a ParticipantRecording in the store
// and queues a job; a worker runs it with Run, which follows that one
// participant and writes HLS (fMP4, the "high" rendition), thumbnails and
// event objects under
//
//	<stage id>/<session id>/<participant id>/<start, epoch ms>/
//
// H.264 is remuxed as it arrives (keyframes alone are decoded, for
// thumbnails); VP8 is decoded and encoded to H.264 on an output clock;
// Opus becomes AAC. A participant that publishes again within
// recordingReconnectWindowSeconds continues the same recording: a new run
// after EXT-X-DISCONTINUITY, in the same prefix.
package recording

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/store"
)

// Dispatcher starts participant recordings. The stage calls PublishStarted.
type Dispatcher struct {
	store *store.Store
	queue *jobs.Queue
	log   *slog.Logger
}

// NewDispatcher returns a dispatcher that queues jobs on q.
func NewDispatcher(st *store.Store, q *jobs.Queue, log *slog.Logger) *Dispatcher {
	if log == nil {
		log = slog.Default()
	}
	return &Dispatcher{store: st, queue: q, log: log.With("component", "recording")}
}

var errNewRecording = errors.New("a new recording")

// PublishStarted records that participant pid started publishing in a
// session of stage stageID: a recording that is live takes it back (a
// reconnect within the window); otherwise, on a stage that records
// participants, a new recording is queued. It returns the recording, or
// a zero one when the stage does not record.
func (d *Dispatcher) PublishStarted(ctx context.Context, stageID, sessionID, pid string) (ivs.ParticipantRecording,
	error) {
	key := stageID + "." + sessionID + "." + pid
	latest, err := d.store.Recordings.Get(ctx, latestKey(stageID, pid))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d.start(ctx, stageID, sessionID, pid)
	case err != nil:
		return latest, fmt.Errorf("recording of %s: %w", pid, err)
	}
	rec, err := d.store.Recordings.Update(ctx, latest.Ref, func(r *ivs.ParticipantRecording) error {
		if !r.Live() {
			return errNewRecording
		}
		r.Publishes++ // tells the worker waiting out the window
		return nil
	})
	switch {
	case errors.Is(err, errNewRecording), errors.Is(err, store.ErrNotFound):
		return d.start(ctx, stageID, sessionID, pid)
	case err != nil:
		return rec, fmt.Errorf("recording of %s: %w", pid, err)
	}
	if latest.Ref != key {
		// Back in another session: the participant there shows the
		// continued recording.
		alias := ivs.ParticipantRecording{StageARN: rec.StageARN, SessionID: sessionID, ParticipantID: pid, Ref: latest.Ref}
		if err := d.store.Recordings.Put(ctx, key, alias); err != nil {
			return rec, err
		}
	}
	d.log.Info("participant back within the reconnect window", "stage", stageID, "participant", pid, "prefix", rec.Prefix)
	return rec, nil
}

// latestKey names the record that points at a participant's latest
// recording on a stage (session ids start "st-", so it is no session's).
func latestKey(stageID, pid string) string { return stageID + ".latest." + pid }

// start records and queues a new recording, if the stage records.
func (d *Dispatcher) start(ctx context.Context, stageID, sessionID, pid string) (ivs.ParticipantRecording, error) {
	st, err := d.store.Stages.Get(ctx, stageID)
	if err != nil {
		return ivs.ParticipantRecording{}, fmt.Errorf("stage %s: %w", stageID, err)
	}
	cfg := st.AutoParticipantRecordingConfiguration
	if cfg.StorageConfigurationARN == "" || !records(cfg) {
		return ivs.ParticipantRecording{}, nil
	}
	a, err := ivs.ParseARN(cfg.StorageConfigurationARN)
	if err != nil {
		return ivs.ParticipantRecording{}, err
	}
	sc, err := d.store.StorageConfigurations.Get(ctx, a.ID)
	if err != nil {
		return ivs.ParticipantRecording{}, fmt.Errorf("storage configuration %s: %w", cfg.StorageConfigurationARN, err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	rec := ivs.ParticipantRecording{
		StageARN: st.ARN, SessionID: sessionID, ParticipantID: pid, BucketName: sc.S3.BucketName,
		Prefix: Prefix(stageID, sessionID, pid, now), State: ivs.RecordingStarting,
		Config: cfg, StartTime: now, Publishes: 1,
	}
	key := stageID + "." + sessionID + "." + pid
	if err := d.store.Recordings.Put(ctx, key, rec); err != nil {
		return rec, err
	}
	if err := d.store.Recordings.Put(ctx, latestKey(stageID, pid), ivs.ParticipantRecording{StageARN: st.ARN,
		ParticipantID: pid, Ref: key}); err != nil {
		return rec, err
	}
	job := jobs.ParticipantRecordingJob(st.ARN, jobs.ParticipantRecording{StageID: stageID, SessionID: sessionID,
		ParticipantID: pid, StartMS: now.UnixMilli()})
	if err := d.queue.Submit(ctx, job); err != nil {
		return rec, err
	}
	d.log.Info("participant recording queued", "stage", stageID, "participant", pid, "bucket", rec.BucketName,
		"prefix", rec.Prefix)
	return rec, nil
}

// records reports whether cfg writes anything: HLS, or thumbnails alone
// with mediaTypes NONE.
func records(cfg ivs.AutoParticipantRecordingConfiguration) bool {
	return mediaType(cfg) != "NONE" || cfg.ThumbnailConfiguration.RecordingMode == "INTERVAL"
}

func mediaType(cfg ivs.AutoParticipantRecordingConfiguration) string {
	if len(cfg.MediaTypes) == 0 {
		return "AUDIO_VIDEO"
	}
	return cfg.MediaTypes[0]
}

// Prefix is IVS's key prefix of an individual recording.
func Prefix(stageID, sessionID, pid string, start time.Time) string {
	return path.Join(stageID, sessionID, pid, strconv.FormatInt(start.UnixMilli(), 10))
}

// Hook is PublishStarted as stage.Config.OnPublishStarted takes it:
// failures are logged.
func (d *Dispatcher) Hook() func(ctx context.Context, stageID, sessionID, pid string) {
	return func(ctx context.Context, stageID, sessionID, pid string) {
		if _, err := d.PublishStarted(ctx, stageID, sessionID, pid); err != nil {
			d.log.Warn("participant recording not started", "stage", stageID, "participant", pid, "error", err)
		}
	}
}
