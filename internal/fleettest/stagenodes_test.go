//go:build faults

package fleettest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// TestStageNodeFaults runs a stage cluster of three nodes behind one
// balancer, with two stages of two `stagehand publish` participants each,
// placed on different nodes, and a composition recording each stage. The
// node hosting the first stage is SIGKILLed, then the node hosting the
// second is SIGTERMed (drained). After each, the stage is hosted again,
// every publisher is back by itself, the composition is still ACTIVE on its
// worker, and in the end each recording is one playlist with no segment
// lost. What each fault cost is printed on a line that starts with the
// fault's name.
func TestStageNodeFaults(t *testing.T) {
	f := startFleet(t, fleetSpec{workers: 1, stageNodes: 3})
	var fig figures
	defer fig.print(t)
	stages := []*stageUnderTest{f.stageWithComposition("one", "tomato", "gold"),
		f.stageWithComposition("two", "teal", "orchid")}
	for _, s := range stages {
		s.waitBack(t, f, "", 30*time.Second)
		waitActive(t, f, s.comp, 30*time.Second)
	}
	if a, b := f.hostOf(stages[0].id), f.hostOf(stages[1].id); a == b {
		t.Logf("both stages on node %s (placement goes by load; the test goes on)", a)
	}
	for i, fault := range []struct {
		name string
		hit  func(p *testserver.Process)
	}{
		{"stage node SIGKILL", func(p *testserver.Process) { p.Kill() }},
		{"stage node SIGTERM", func(p *testserver.Process) {
			if !p.Terminate(15 * time.Second) {
				t.Error("the stage node did not exit within 15 s of SIGTERM")
			}
		}},
	} {
		s := stages[i]
		t.Run(fault.name, func(t *testing.T) {
			before := waitSegments(t, f, s, 3, 30*time.Second)
			host := f.hostOf(s.id)
			session := activeSessionOf(t, f, s.arn)
			start := time.Now()
			var rehost time.Duration
			go func() { // Terminate returns once the node exited
				fault.hit(f.serves[nodePID(host)])
			}()
			rehost = f.waitRehosted(t, s.id, host, 20*time.Second)
			s.waitBack(t, f, session, 30*time.Second)
			back := time.Since(start)
			waitActive(t, f, s.comp, 5*time.Second) // still ACTIVE after the node loss, or the test fails
			fig.add("%s: stage re-hosted %s after the fault, every publisher back %s after it",
				fault.name, rehost.Round(10*time.Millisecond), back.Round(10*time.Millisecond))
			waitSegments(t, f, s, before+3, 30*time.Second) // the recording goes on past the fault
		})
	}
	for _, s := range stages {
		if _, err := f.api.StopComposition(context.Background(), &ivsrealtime.StopCompositionInput{Arn: s.comp}); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range stages {
		lost, frozen, segs := f.checkRecording(t, s)
		name := []string{"stage node SIGKILL", "stage node SIGTERM"}[i]
		fig.add("%s: frames lost in the composite %d (it stood still %.2f s), segments lost %d of %d",
			name, int(frozen*30+0.5), frozen, lost, segs)
	}
}

type stageUnderTest struct {
	arn, comp *string
	id        string
	prefix    string
}

// stageWithComposition creates a stage, two publishers on it and a
// composition recording it to S3 (320x180, 2 s segments).
func (f *fleet) stageWithComposition(name string, colours ...string) *stageUnderTest {
	ctx := context.Background()
	st, err := f.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(name)})
	if err != nil {
		f.t.Fatal(err)
	}
	for i, c := range colours {
		f.publish(st.Stage.Arn, fmt.Sprintf("%s-%d", name, i+1), c)
	}
	enc, err := f.api.CreateEncoderConfiguration(ctx, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(180), Framerate: aws.Float32(30), Bitrate: aws.Int32(300_000)}})
	if err != nil {
		f.t.Fatal(err)
	}
	sc, err := f.api.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}})
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := f.api.StartComposition(ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Stage.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: sc.StorageConfiguration.Arn, EncoderConfigurationArns: []string{*enc.EncoderConfiguration.Arn},
			RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{
				TargetSegmentDurationSeconds: aws.Int32(2)}}}}}})
	if err != nil {
		f.t.Fatal(err)
	}
	arn := *st.Stage.Arn
	return &stageUnderTest{arn: st.Stage.Arn, comp: out.Composition.Arn, id: arn[strings.LastIndex(arn, "/")+1:]}
}

// waitBack waits until both publishers publish in a session other than
// old, and reports how long that took.
func (s *stageUnderTest) waitBack(t *testing.T, f *fleet, old string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	testkit.WaitFor(t, within, 100*time.Millisecond, func() error {
		session := activeSessionOf(t, f, s.arn)
		if session == "" || session == old {
			return fmt.Errorf("no new session on stage %s", s.id)
		}
		// IVS takes one filter at a time.
		out, err := f.api.ListParticipants(context.Background(), &ivsrealtime.ListParticipantsInput{StageArn: s.arn,
			SessionId: aws.String(session), FilterByPublished: true})
		if err != nil {
			return err
		}
		back := 0
		for _, p := range out.Participants {
			if p.State == types.ParticipantStateConnected {
				back++
			}
		}
		if back < 2 {
			return fmt.Errorf("%d of 2 publishers back on stage %s", back, s.id)
		}
		return nil
	})
	return time.Since(start)
}

func activeSessionOf(t *testing.T, f *fleet, arn *string) string {
	t.Helper()
	out, err := f.api.GetStage(context.Background(), &ivsrealtime.GetStageInput{Arn: arn})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Stage.ActiveSessionId)
}

// hostOf is the node holding the stage's lease ("" when none does).
func (f *fleet) hostOf(stageID string) string {
	kv, err := f.js.KeyValue(context.Background(), "stagehand_stage_leases")
	if err != nil {
		return ""
	}
	e, err := kv.Get(context.Background(), stageID)
	if err != nil {
		return ""
	}
	var l struct{ Node string }
	if json.Unmarshal(e.Value(), &l) != nil {
		return ""
	}
	return l.Node
}

// nodePID is the process id in a default node id (host-pid-random).
func nodePID(node string) int {
	parts := strings.Split(node, "-")
	if len(parts) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

func (f *fleet) waitRehosted(t *testing.T, stageID, old string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	testkit.WaitFor(t, within, 50*time.Millisecond, func() error {
		if h := f.hostOf(stageID); h == "" || h == old {
			return fmt.Errorf("stage %s not hosted by another node (lease: %q)", stageID, h)
		}
		return nil
	})
	return time.Since(start)
}

// waitSegments waits until the recording lists n segments, and returns how
// many it lists.
func waitSegments(t *testing.T, f *fleet, s *stageUnderTest, n int, within time.Duration) (got int) {
	t.Helper()
	testkit.WaitFor(t, within, 200*time.Millisecond, func() error {
		if s.prefix == "" {
			c := waitActive(t, f, s.comp, within)
			s.prefix = *c.Destinations[0].Detail.S3.RecordingPrefix
		}
		segs, _ := f.recording(s.prefix).Playlist(t)
		if got = len(segs); got < n {
			return fmt.Errorf("%d segments stored, want %d", got, n)
		}
		return nil
	})
	return got
}

// checkRecording waits for the composition to stop and checks its one
// recording: every listed segment stored, numbers increasing. It returns
// the segments lost, the seconds the composite stood still (FFmpeg's
// freezedetect over the whole picture) and the segments listed.
func (f *fleet) checkRecording(t *testing.T, s *stageUnderTest) (lost int, frozen float64, listed int) {
	t.Helper()
	waitState(t, f, s.comp, types.CompositionStateStopped, 60*time.Second)
	rec := f.recording(s.prefix)
	segs, text := rec.Playlist(t)
	stored := rec.Stored(t)
	dir := t.TempDir()
	var list strings.Builder
	for i, seg := range segs {
		if i > 0 && seg.Index <= segs[i-1].Index {
			t.Errorf("segment numbers not increasing: %d after %d", seg.Index, segs[i-1].Index)
		}
		if !stored[seg.Index] {
			lost++
			continue
		}
		b, err := upload.Get(context.Background(), f.s3c, bucket, fmt.Sprintf("%s/media/hls/180p30/%d.ts", s.prefix, seg.Index))
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, fmt.Sprintf("%d.ts", seg.Index))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&list, "file '%s'\n", name)
	}
	if !strings.Contains(text, "#EXT-X-ENDLIST") {
		t.Errorf("the playlist of %s is not ended:\n%s", s.id, text)
	}
	if lost > 0 {
		t.Errorf("%d segments listed but not stored", lost)
	}
	return lost, freezeSeconds(t, dir, list.String()), len(segs)
}

var (
	freezeStart    = regexp.MustCompile(`freeze_start: ([0-9.]+)`)
	freezeDuration = regexp.MustCompile(`freeze_duration: ([0-9.]+)`)
)

// freezeSeconds runs FFmpeg's freezedetect over the concatenated segments:
// how long the picture did not change (0.2 s or more at a time), leaving
// out the start, before the first picture of a participant arrived.
func freezeSeconds(t *testing.T, dir, list string) float64 {
	t.Helper()
	lf := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(lf, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostats", "-f", "concat", "-safe", "0", "-i", lf,
		"-vf", "freezedetect=n=0.00002:d=0.2", "-an", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg freezedetect: %v\n%s", err, out)
	}
	starts := freezeStart.FindAllStringSubmatch(string(out), -1)
	total := 0.0
	for i, m := range freezeDuration.FindAllStringSubmatch(string(out), -1) {
		d, _ := strconv.ParseFloat(m[1], 64)
		at := 0.0
		if i < len(starts) {
			at, _ = strconv.ParseFloat(starts[i][1], 64)
		}
		t.Logf("the composite stood still %.2f s from %.2f s", d, at)
		if at > 0.5 {
			total += d
		}
	}
	return total
}
