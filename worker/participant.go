package worker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/recording"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// participantCost is the capacity an individual recording takes: a VP8
// transcode of 720p30 costs about a quarter of a 1080p30 composite.
const participantCost = minCost

// runParticipantJob runs an individual participant recording (package
// recording) to its end and settles the claim. A worker that shuts down
// ends the recording there rather than handing it on (the job is done)
// and, if the participant still publishes, queues a new recording for
// another worker.
func (w *Worker) runParticipantJob(ctx context.Context, c *held) {
	log := w.log.With("job", c.Job.Name)
	p := c.Job.Participant
	if p == nil {
		if err := c.GiveUp(ctx, "participant-recording job without its participant"); err != nil {
			log.Warn("settle job", "error", err)
		}
		return
	}
	if !w.reserve(ctx, c, participantCost, log) {
		return
	}
	defer w.budget.give(participantCost)
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(hbCtx, c) })
	err := recording.Run(ctx, recording.Deps{Store: w.store, Worker: w.cfg.ID, Output: w.recordingOutput,
		Follow: w.followParticipant, Log: w.log}, p.Key())
	stopHeartbeat()
	hb.Wait()
	switch {
	case errors.Is(err, recording.ErrInterrupted):
		w.continueRecording(context.WithoutCancel(ctx), *p, log)
	case err != nil && !errors.Is(err, recording.ErrEnded):
		log.Warn("participant recording", "error", err)
	}
	if err := c.Done(context.WithoutCancel(ctx)); err != nil {
		log.Warn("settle job", "error", err)
	}
}

// continueRecording starts a new recording of a participant whose
// recording this worker ended by shutting down while they still publish,
// so that another worker records the rest: without it nothing would until
// they published again.
func (w *Worker) continueRecording(ctx context.Context, p jobs.ParticipantRecording, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := w.store.Stages.Get(ctx, p.StageID)
	if err != nil || st.ActiveSessionID == "" {
		log.Warn("participant recording not continued: the stage has no session", "participant", p.ParticipantID,
			"error", err)
		return
	}
	rec, err := recording.NewDispatcher(w.store, w.queue, w.log).PublishStarted(ctx, p.StageID, st.ActiveSessionID,
		p.ParticipantID)
	if err != nil {
		log.Error("participant recording not continued after the shutdown", "participant", p.ParticipantID, "error", err)
		return
	}
	log.Info("worker shutting down: the participant still publishes; a new recording continues on another worker",
		"participant", p.ParticipantID, "prefix", rec.Prefix)
}

// recordingOutput is where a recording's files go: the local object store,
// or a spool uploaded to S3.
func (w *Worker) recordingOutput(ctx context.Context, bucket, prefix string) (recording.Output, error) {
	root := w.cfg.BucketsDir
	if w.cfg.S3 != nil {
		root = w.cfg.SpoolDir
	}
	dir, err := recording.LocalDir(root, bucket, prefix)
	if err != nil {
		return recording.Output{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return recording.Output{}, err
	}
	if w.cfg.S3 == nil {
		return recording.Output{Dir: dir}, nil
	}
	// The uploads outlive a worker shutdown long enough to store the end.
	up, err := upload.Start(context.WithoutCancel(ctx), upload.Config{Client: w.recordingS3(), Bucket: bucket,
		Prefix: prefix, Dir: dir,
		OnUploaded: func(u upload.Uploaded) { w.metrics.uploadDelay.Observe(u.Delay.Seconds()) }})
	if err != nil {
		return recording.Output{}, err
	}
	return recording.Output{Dir: dir, OnFile: up.Enqueue, Close: up.Close}, nil
}

// followParticipant subscribes to one participant of the stage.
func (w *Worker) followParticipant(ctx context.Context, st ivs.Stage, pid string,
	onParticipants func([]stage.ParticipantInfo), onTrack func(*webrtc.TrackRemote, recording.Subscription)) error {
	a, err := ivs.ParseARN(st.ARN)
	if err != nil {
		return err
	}
	full, err := w.store.Stages.Get(ctx, a.ID)
	if err != nil {
		return err
	}
	tok, err := w.tokens.RecordingToken(ctx, a.ID, pid)
	if err != nil {
		return err
	}
	return client.Follow(ctx, full.Endpoints.Events, full.Endpoints.WHIP, tok, client.FollowOptions{
		Options:        w.stageOptions("stagehand-recorder"),
		Filter:         func(id string) bool { return id == pid },
		OnParticipants: onParticipants,
		OnTrack:        func(_ string, tr *webrtc.TrackRemote, sub *client.Subscription) { onTrack(tr, sub) },
		Logger:         w.log,
	})
}

// recordingS3 is the S3 client every participant recording of this worker
// shares: one pool of connections, not one per recording.
func (w *Worker) recordingS3() *s3.Client {
	w.recS3Once.Do(func() { w.recS3 = upload.NewClient(*w.cfg.S3) })
	return w.recS3
}
