package loadtest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/loadtest"
)

// TestRun runs one publisher and three subscribers on a real stage for a
// few seconds: everyone joins, nothing is lost, each subscriber receives
// what the publisher sends, latency is that of loopback, and the stage it
// made is gone afterwards.
func TestRun(t *testing.T) {
	for _, codec := range []string{"vp8", "h264"} {
		t.Run(codec, func(t *testing.T) { testRun(t, codec) })
	}
}

func testRun(t *testing.T, codec string) {
	t.Helper()
	env := stagetest.Start(t, stagetest.Options{})
	check := testkit.CheckGoroutines(t, testkit.IdleHTTPConns)
	var progress bytes.Buffer
	rep, err := loadtest.Run(context.Background(), loadtest.Config{
		EndpointURL: env.APIURL, AccessKeyID: stagetest.KeyID, SecretAccessKey: stagetest.SecretKey,
		Publishers: 1, Subscribers: 3, Duration: 3 * time.Second, VideoCodec: codec,
		Width: 320, Height: 180, VideoBitrate: 300_000,
		MetricsURL: "none", ICEIPs: []string{"127.0.0.1"}, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if rep.Publishers != 1 || rep.Subscribers != 3 || len(rep.Failures) != 0 {
		t.Errorf("publishers %d, subscribers %d, failures %v", rep.Publishers, rep.Subscribers, rep.Failures)
	}
	if rep.SubscriberJoin.N != 3 || rep.PublisherJoin.N != 1 {
		t.Errorf("joins: %+v %+v", rep.SubscriberJoin, rep.PublisherJoin)
	}
	if rep.Loss.Lost != 0 || rep.Loss.Expected == 0 {
		t.Errorf("loss = %+v", rep.Loss)
	}
	if lo, hi := 0.6*rep.PublisherKbps, 1.4*rep.PublisherKbps; rep.ReceivedKbps.Min < lo || rep.ReceivedKbps.Max > hi {
		t.Errorf("received %+v kbit/s, want within ±40 %% of the %.0f sent", rep.ReceivedKbps, rep.PublisherKbps)
	}
	if rep.Latency.N == 0 || rep.Latency.Min <= 0 || rep.Latency.P95 >= 500 {
		t.Errorf("latency = %+v ms", rep.Latency)
	}
	if !strings.Contains(progress.String(), "subscribers 3/3") {
		t.Errorf("progress = %q", progress.String())
	}
	out, err := env.API.ListStages(env.Ctx, &ivsrealtime.ListStagesInput{})
	if err != nil || len(out.Stages) != 0 {
		t.Errorf("stages left: %v %v", out, err)
	}
	check()
}

// TestRamp: a ramp that holds goes on to its ceiling, each step with its
// window and packets; one whose threshold no step can meet stops at its
// first step.
func TestRamp(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	base := loadtest.Config{
		EndpointURL: env.APIURL, AccessKeyID: stagetest.KeyID, SecretAccessKey: stagetest.SecretKey,
		Publishers: 1, Width: 160, Height: 90, VideoBitrate: 100_000, MetricsURL: "none",
		ICEIPs: []string{"127.0.0.1"}, Ramp: loadtest.Ramp{Step: 1, Every: time.Second},
	}
	holds := base
	holds.Subscribers = 2
	rep, err := loadtest.Run(context.Background(), holds)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Ramp; r == nil || len(r.Steps) != 2 || r.LastHeld != 2 || r.FirstFailed != 0 {
		t.Fatalf("ramp to 2 = %+v", r)
	}
	for _, st := range rep.Ramp.Steps {
		if st.Packets == 0 || !st.JoinStart.Before(st.Start) || st.End.Sub(st.Start) < time.Second {
			t.Errorf("step window = %+v: want packets, and joins before a window of the step's length", st)
		}
	}
	crosses := base
	crosses.Ramp.MaxLatency = time.Nanosecond
	rep, err = loadtest.Run(context.Background(), crosses)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Ramp; r == nil || len(r.Steps) != 1 || r.LastHeld != 0 || r.FirstFailed != 1 || r.Steps[0].Held {
		t.Errorf("ramp over a 1 ns threshold = %+v", r)
	}
	var table bytes.Buffer
	_ = rep.WriteTable(&table)
	if !strings.Contains(table.String(), "crossed a threshold at 1") {
		t.Errorf("table:\n%s", table.String())
	}
}

// TestRampCountsDisconnects: subscribers whose connections end within a
// step (the stage is deleted under them) are counted, and the step fails.
func TestRampCountsDisconnects(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	progress := &testkit.SyncBuffer{}
	done := make(chan *loadtest.Report, 1)
	go func() {
		rep, err := loadtest.Run(context.Background(), loadtest.Config{
			EndpointURL: env.APIURL, AccessKeyID: stagetest.KeyID, SecretAccessKey: stagetest.SecretKey,
			Publishers: 1, Subscribers: 2, Width: 160, Height: 90, VideoBitrate: 100_000, MetricsURL: "none",
			ICEIPs: []string{"127.0.0.1"}, Ramp: loadtest.Ramp{Step: 2, Every: 6 * time.Second}, Progress: progress,
		})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	testkit.WaitFor(t, 30*time.Second, 50*time.Millisecond, testkit.Until("subscribers joined", func() bool {
		return strings.Contains(progress.String(), "subscribers 2/2")
	}))
	out, err := env.API.ListStages(env.Ctx, &ivsrealtime.ListStagesInput{})
	if err != nil || len(out.Stages) != 1 {
		t.Fatalf("stages: %v %v", out, err)
	}
	if _, err := env.API.DeleteStage(env.Ctx, &ivsrealtime.DeleteStageInput{Arn: out.Stages[0].Arn}); err != nil {
		t.Fatal(err)
	}
	rep := <-done
	if rep == nil || rep.Ramp == nil || len(rep.Ramp.Steps) != 1 {
		t.Fatalf("report = %+v", rep)
	}
	if st := rep.Ramp.Steps[0]; st.Disconnected != 2 || st.Held {
		t.Errorf("step = %+v, want 2 disconnected, not held", st)
	}
}
