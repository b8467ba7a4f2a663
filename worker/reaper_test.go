package worker_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/worker"
)

// TestPoisonJobFails: a job that every worker it reaches dies on (here:
// claimed and abandoned, as a crash would) is delivered MaxDeliver times,
// then its composition ends FAILED with the reason instead of staying
// STARTING with nobody running it.
func TestPoisonJobFails(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Jobs: jobs.Config{AckWait: 500 * time.Millisecond, MaxDeliver: 2}})
	st := env.CreateStage(t, "poison")
	enc := encoderConfig(t, env, 320, 180, 300_000)
	sc := storageConfig(t, env, "poison")
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		ctx, cancel := context.WithTimeout(env.Ctx, 10*time.Second)
		c, err := env.Queue.Claim(ctx)
		cancel()
		if err != nil || c.Attempt != attempt {
			t.Fatalf("delivery %d: %+v, %v", attempt, c, err)
		}
		// The worker "dies": no heartbeat, no settlement.
	}
	// The server finds the job out of attempts when it next serves a
	// pull: a worker's.
	runWorker(t, env, worker.Config{BucketsDir: t.TempDir()})
	ctx, cancel := context.WithCancel(env.Ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		worker.Reap(ctx, env.Store, env.Queue, 200*time.Millisecond, slog.Default())
	}()
	defer func() { cancel(); <-done }()
	failed, took := waitState(t, env, out.Composition.Arn, types.CompositionStateFailed, 15*time.Second)
	t.Logf("FAILED %s after the reaper started", took.Round(10*time.Millisecond))
	if failed.Destinations[0].State != types.DestinationStateFailed || failed.EndTime == nil {
		t.Errorf("destination %s, endTime %v; want FAILED with an end", failed.Destinations[0].State, failed.EndTime)
	}
	id := (*out.Composition.Arn)[strings.LastIndex(*out.Composition.Arn, "/")+1:]
	if c, err := env.Store.Compositions.Get(env.Ctx, id); err != nil || !strings.Contains(c.Run.Reason, "attempts") {
		t.Errorf("reason %q (%v)", c.Run.Reason, err)
	}
	if s, err := env.Queue.Stats(env.Ctx); err != nil || s.Stored != 0 {
		t.Errorf("queue after reaping: %+v, %v; want empty", s, err)
	}
}
