//go:build faults

package fleettest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/ivs"
)

// TestFaults runs one composition (S3 recording + RTMP channel) on a fleet
// of three workers over a 3-node NATS cluster and injects, in turn: a
// worker SIGKILLed mid-composition, a worker SIGTERMed (handoff), an
// object-store outage during which the running worker is SIGKILLed with
// segments in its spool (it restarts later on the same data directory),
// and a NATS node SIGKILLed. After each fault the composition must run
// again within 15 s; in the end the one HLS playlist holds every segment
// ever listed or spooled, each stored, with one EXT-X-DISCONTINUITY per
// resume, and the RTMP channel got one stream per run.
func TestFaults(t *testing.T) {
	f := startFleet(t, fleetSpec{workers: 3, stageNodes: 1})
	var fig figures
	ctx := context.Background()
	st, err := f.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("fleet")})
	if err != nil {
		t.Fatal(err)
	}
	f.publish(st.Stage.Arn, "alice", "orange")
	enc, err := f.api.CreateEncoderConfiguration(ctx, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(180), Framerate: aws.Float32(30), Bitrate: aws.Int32(300_000)}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := f.api.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.api.StartComposition(ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Stage.Arn,
		Destinations: []types.DestinationConfiguration{
			{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: sc.StorageConfiguration.Arn,
				EncoderConfigurationArns: []string{*enc.EncoderConfiguration.Arn},
				RecordingConfiguration:   &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}}}},
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(channel), EncoderConfigurationArn: enc.EncoderConfiguration.Arn}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Composition.Arn
	id := (*arn)[strings.LastIndex(*arn, "/")+1:]
	started := time.Now()
	comp := waitActive(t, f, arn, 30*time.Second)
	fig.add("StartComposition → ACTIVE: %s", time.Since(started).Round(10*time.Millisecond))
	// rec remembers every segment the object store's playlist listed, and
	// every segment a killed worker left in its spool: all must be in the
	// final playlist. Its waits take the subtest's t: only a test's own
	// goroutine may end it.
	rec := f.recording(*comp.Destinations[0].Detail.S3.RecordingPrefix)
	resumes := 0
	rec.WaitSegments(t, 3, 30*time.Second)

	t.Run("worker SIGKILL", func(t *testing.T) {
		w, c := f.runner(id)
		next := recording(c).Next
		w.proc.Kill()
		killed := time.Now()
		_, took := f.waitResumed(id, w, next, 30*time.Second)
		resumes++
		fig.add("worker SIGKILL: resumed on another worker %s after the kill (target < 15 s)", took.Round(10*time.Millisecond))
		if took > 15*time.Second {
			t.Errorf("resumed after %s, want < 15 s", took)
		}
		rec.WaitSegments(t, rec.Observe(t)+2, 20*time.Second)
		_ = killed
	})

	t.Run("worker SIGTERM", func(t *testing.T) {
		w, c := f.runner(id)
		next := recording(c).Next
		start := time.Now()
		if !w.proc.Terminate(30 * time.Second) {
			t.Error("the worker did not exit within 30 s of SIGTERM")
		}
		exited := time.Since(start)
		if left, _ := filepath.Glob(filepath.Join(w.dir, "spool", "*", "*", "*", "*", "*", "media", "hls", "*", "*.ts")); len(left) > 0 {
			t.Errorf("the worker exited with %d segments not uploaded: %v", len(left), left)
		}
		_, took := f.waitResumed(id, w, next, 30*time.Second)
		resumes++
		fig.add("worker SIGTERM: exited in %s, composition resumed %s after the signal", exited.Round(10*time.Millisecond), took.Round(10*time.Millisecond))
		rec.WaitSegments(t, rec.Observe(t)+2, 20*time.Second)
		f.startWorker("") // keep three
	})

	t.Run("object store outage and a worker SIGKILLed while spooling", func(t *testing.T) {
		f.s3srv.Stop()
		w, _ := f.runner(id)
		var c ivs.RecordingRun
		testkit.WaitFor(t, 30*time.Second, 200*time.Millisecond, func() error {
			if c = recordingOf(f, id); len(c.Spooled) < 2 {
				return fmt.Errorf("fewer than 2 segments spooled in the outage: %+v", c)
			}
			return nil
		})
		for _, s := range c.Spooled {
			rec.Saw(s.Index)
		}
		w.proc.Kill()
		f.s3srv.Start()
		_, took := f.waitResumed(id, w, c.Next, 40*time.Second)
		resumes++
		restarted := f.startWorker(w.name) // same data directory: uploads what it spooled
		_ = restarted
		fig.add("object store down + worker SIGKILL with %d segments spooled: resumed %s after the kill", len(c.Spooled), took.Round(10*time.Millisecond))
		// The spooled segments reach the store once the worker is back.
		testkit.WaitFor(t, 60*time.Second, 500*time.Millisecond, func() error {
			stored := rec.Stored(t)
			missing := 0
			for _, s := range c.Spooled {
				if !stored[s.Index] {
					missing++
				}
			}
			if missing > 0 {
				return fmt.Errorf("%d spooled segments not uploaded since the restart", missing)
			}
			return nil
		})
	})

	t.Run("NATS node SIGKILL", func(t *testing.T) {
		w, c := f.runner(id)
		before := recording(c).Next
		n := f.nats[1]
		n.proc.Kill()
		apiErrors, calls := 0, 0
		// Calls the API for 10 s on purpose: none may fail meanwhile.
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			calls++
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := f.api.GetComposition(cctx, &ivsrealtime.GetCompositionInput{Arn: arn}); err != nil {
				apiErrors++
				t.Logf("GetComposition during the node loss: %v", err)
			}
			cancel()
		}
		w2, c2 := f.runner(id)
		if w2 != w {
			t.Errorf("the composition moved to another worker when a NATS node died")
		}
		if recording(c2).Next < before+3 {
			t.Errorf("the recording went from segment %d to %d in 10 s without a NATS node", before, recording(c2).Next)
		}
		fig.add("NATS node SIGKILL (1 of 3): %d of %d API calls failed over 10 s; composition kept running on its worker (%d segments meanwhile)",
			apiErrors, calls, recording(c2).Next-before)
		if apiErrors > 0 {
			t.Errorf("%d API calls failed while one of three NATS nodes was down", apiErrors)
		}
		f.startNode(n, f.routes())
	})

	// The end: stop, then check the one recording.
	if _, err := f.api.StopComposition(ctx, &ivsrealtime.StopCompositionInput{Arn: arn}); err != nil {
		t.Fatal(err)
	}
	waitState(t, f, arn, types.CompositionStateStopped, 60*time.Second)
	res := rec.Check(t, resumes)
	streams := len(f.rtmp.Recordings("fleet"))
	if streams < 1+resumes {
		t.Errorf("the RTMP channel got %d streams, want one per run (%d)", streams, 1+resumes)
	}
	fig.add("faults injected: 4; compositions resumed: %d; RTMP streams: %d (one per run)", resumes, streams)
	fig.add("recording: %d segments in one playlist, %d discontinuities, segments lost: %d", len(res.Segments),
		res.Discontinuities, res.Lost)
	fig.print(t)
}

func recordingOf(f *fleet, id string) ivs.RecordingRun {
	_, c := f.runner(id)
	return recording(c)
}

func waitActive(t *testing.T, f *fleet, arn *string, within time.Duration) *types.Composition {
	t.Helper()
	return waitState(t, f, arn, types.CompositionStateActive, within)
}

func waitState(t *testing.T, f *fleet, arn *string, want types.CompositionState, within time.Duration) *types.Composition {
	t.Helper()
	var comp *types.Composition
	testkit.WaitFor(t, within, 200*time.Millisecond, func() error {
		out, err := f.api.GetComposition(context.Background(), &ivsrealtime.GetCompositionInput{Arn: arn})
		if err != nil {
			return err
		}
		if comp = out.Composition; comp.State != want {
			return fmt.Errorf("composition %s, want %s", comp.State, want)
		}
		return nil
	})
	return comp
}
