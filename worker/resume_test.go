package worker_test

import (
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/worker"
)

// startRecording starts a 320x180 composition of st recorded with 2 s
// segments into bucket, and waits until it is ACTIVE.
func startRecording(t *testing.T, env *stagetest.Env, st types.Stage, bucket string, thumbs ...types.CompositionThumbnailConfiguration) *types.Composition {
	t.Helper()
	enc := encoderConfig(t, env, 320, 180, 300_000)
	sc := storageConfig(t, env, bucket)
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc}, ThumbnailConfigurations: thumbs,
			RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := waitState(t, env, out.Composition.Arn, types.CompositionStateActive, 15*time.Second)
	return c
}

func playlistSegments(t *testing.T, path string) ([]ivsrec.Segment, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ""
		}
		t.Fatal(err)
	}
	segs, err := ivsrec.ReadPlaylist(b)
	if err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return segs, string(b)
}

// TestHandoffContinuesRecording: a worker that shuts down hands its
// composition off; another resumes it within seconds and continues the same
// playlist: the first run's segments untouched, one EXT-X-DISCONTINUITY,
// segment numbers continuing without a gap, and the composition ACTIVE
// throughout.
func TestHandoffContinuesRecording(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "handoff")
	publish(t, env, st, "one", "orange")
	buckets := t.TempDir()
	startWorker := func(id string) (stop func()) {
		return runWorker(t, env, worker.Config{ID: id, BucketsDir: buckets})
	}
	stopFirst := startWorker("first")
	comp := startRecording(t, env, st, "handoff", types.CompositionThumbnailConfiguration{
		TargetIntervalSeconds: aws.Int32(1), Storage: []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential, types.ThumbnailStorageTypeLatest}})
	root := filepath.Join(buckets, "handoff", filepath.FromSlash(*comp.Destinations[0].Detail.S3.RecordingPrefix))
	media := filepath.Join(buckets, "handoff", filepath.FromSlash(*comp.Destinations[0].Detail.S3.RecordingPrefix), "media", "hls", "180p30")
	pl := filepath.Join(media, "playlist.m3u8")
	time.Sleep(5 * time.Second)
	stopFirst()
	handedOff := time.Now()
	first, text := playlistSegments(t, pl)
	if len(first) < 2 || strings.Contains(text, "#EXT-X-ENDLIST") {
		t.Fatalf("after the handoff the playlist has %d segments and should not be ended:\n%s", len(first), text)
	}
	sizes := map[string]int64{}
	for _, s := range first {
		fi, err := os.Stat(filepath.Join(media, segName(s)))
		if err != nil {
			t.Fatal(err)
		}
		sizes[segName(s)] = fi.Size()
	}
	firstThumbs := thumbnails(t, root)
	if len(firstThumbs) < 3 {
		t.Fatalf("the first run wrote %d thumbnails in 5 s at one a second", len(firstThumbs))
	}
	startWorker("second")
	testkit.WaitFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if segs, _ := playlistSegments(t, pl); len(segs) <= len(first) {
			return errors.New("the second worker did not continue the recording")
		}
		return nil
	})
	resumedAfter := time.Since(handedOff)
	if c := state(t, env, comp.Arn); c.State != types.CompositionStateActive {
		t.Errorf("composition %s during the handoff, want ACTIVE", c.State)
	}
	time.Sleep(3 * time.Second)
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: comp.Arn}); err != nil {
		t.Fatal(err)
	}
	waitState(t, env, comp.Arn, types.CompositionStateStopped, 10*time.Second)
	all, text := playlistSegments(t, pl)
	t.Logf("handed off after %d segments; the next worker's first segment was listed %s later; %d segments in all",
		len(first), resumedAfter.Round(10*time.Millisecond), len(all))
	for i, s := range all {
		if s.Index != i {
			t.Errorf("segment %d is %d.ts: numbers must continue without a gap", i, s.Index)
		}
		if s.Discontinuity != (i == len(first)) {
			t.Errorf("segment %d discontinuity %v", i, s.Discontinuity)
		}
		if _, err := os.Stat(filepath.Join(media, segName(s))); err != nil {
			t.Errorf("segment %s listed but missing: %v", segName(s), err)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(text), "#EXT-X-ENDLIST") {
		t.Errorf("the playlist is not ended:\n%s", text)
	}
	for name, size := range sizes {
		if fi, err := os.Stat(filepath.Join(media, name)); err != nil || fi.Size() != size {
			t.Errorf("the first run's %s changed or vanished (%v)", name, err)
		}
	}
	// Thumbnails: numbered on from the first run's, none overwritten, each
	// a 320x180 JPEG of the composite (the orange publisher fills it).
	thumbs := thumbnails(t, root)
	for i := range thumbs {
		if thumbs[i].name != strconv.Itoa(i)+".jpg" {
			t.Fatalf("thumbnails %v: want 0.jpg, 1.jpg, ... without gaps or repeats", names(thumbs))
		}
	}
	if len(thumbs) < len(firstThumbs)+2 {
		t.Errorf("%d thumbnails after the resume, %d before", len(thumbs), len(firstThumbs))
	}
	for i, th := range firstThumbs {
		if !thumbs[i].mod.Equal(th.mod) {
			t.Errorf("the first run's thumbnail %s was rewritten", th.name)
		}
	}
	for _, p := range []string{filepath.Join(root, "media", "thumbnails", "180p30", thumbs[len(thumbs)-1].name), filepath.Join(root, "media", "latest_thumbnail", "180p30", "thumb.jpg")} {
		img := decodeJPEG(t, p)
		if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 180 {
			t.Errorf("%s is %dx%d, want 320x180", p, b.Dx(), b.Dy())
		}
		if r, g, b, _ := img.At(160, 30).RGBA(); r>>8 < 200 || g>>8 < 100 || g>>8 > 200 || b>>8 > 80 {
			t.Errorf("%s pixel (%d,%d,%d), want orange", p, r>>8, g>>8, b>>8)
		}
	}
	if others, _ := filepath.Glob(media + "-*"); len(others) > 0 {
		t.Errorf("a second rendition folder was made: %v", others)
	}
	if _, _, dur := testmedia.ProbeVideo(t, pl); dur < float64(len(all)-1)*2-1 {
		t.Errorf("the recording plays %.1f s for %d segments of 2 s", dur, len(all))
	}
}

func segName(s ivsrec.Segment) string { return filepathBase(s.Index) }

// TestLostClaimStopsTheRun: a worker whose composition was taken over by
// another (it was cut off and the job went elsewhere) stops at its next
// segment without touching the recording or settling the composition.
func TestLostClaimStopsTheRun(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "fenced")
	publish(t, env, st, "one", "teal")
	buckets := t.TempDir()
	runWorker(t, env, worker.Config{ID: "zombie", BucketsDir: buckets})
	comp := startRecording(t, env, st, "fenced")
	media := filepath.Join(buckets, "fenced", filepath.FromSlash(*comp.Destinations[0].Detail.S3.RecordingPrefix), "media", "hls", "180p30")
	time.Sleep(3 * time.Second)
	id := (*comp.Arn)[strings.LastIndex(*comp.Arn, "/")+1:]
	if _, err := env.Store.Compositions.Update(env.Ctx, id, func(c *ivs.Composition) error {
		c.Run.Worker = "usurper"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	taken := time.Now()
	var before []ivsrec.Segment
	for {
		segs, _ := playlistSegments(t, filepath.Join(media, "playlist.m3u8"))
		time.Sleep(2500 * time.Millisecond) // more than a segment
		after, text := playlistSegments(t, filepath.Join(media, "playlist.m3u8"))
		if len(after) == len(segs) {
			before = after
			if strings.Contains(text, "ENDLIST") {
				t.Errorf("the fenced run ended the playlist:\n%s", text)
			}
			break
		}
		if time.Since(taken) > 10*time.Second {
			t.Fatal("the fenced run still records")
		}
	}
	t.Logf("the fenced run stopped within %s, leaving %d segments", time.Since(taken).Round(100*time.Millisecond), len(before))
	c := state(t, env, comp.Arn)
	if c.State != types.CompositionStateActive {
		t.Errorf("composition %s, want ACTIVE (the usurper owns its end)", c.State)
	}
	events := filepath.Join(buckets, "fenced", filepath.FromSlash(*comp.Destinations[0].Detail.S3.RecordingPrefix), "events")
	for _, f := range []string{"recording-ended.json", "recording-failed.json"} {
		if _, err := os.Stat(filepath.Join(events, f)); err == nil {
			t.Errorf("the fenced run wrote %s", f)
		}
	}
}

func filepathBase(i int) string { return strconv.Itoa(i) + ".ts" }

type thumb struct {
	name string
	mod  time.Time
}

// thumbnails lists the sequential thumbnails of a recording in number order.
func thumbnails(t *testing.T, root string) []thumb {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "media", "thumbnails", "180p30", "*.jpg"))
	out := make([]thumb, 0, len(files))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, thumb{filepath.Base(f), fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b thumb) int {
		x, _ := strconv.Atoi(strings.TrimSuffix(a.name, ".jpg"))
		y, _ := strconv.Atoi(strings.TrimSuffix(b.name, ".jpg"))
		return x - y
	})
	return out
}

func names(ts []thumb) []string {
	var n []string
	for _, t := range ts {
		n = append(n, t.name)
	}
	return n
}

func decodeJPEG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// TestDrain: a draining worker claims nothing more, lets its running
// composition go on to its end, and then Run returns by itself.
func TestDrain(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "drain")
	publish(t, env, st, "one", "orange")
	buckets := t.TempDir()
	w, _, done := startWorkerDone(t, env, worker.Config{BucketsDir: buckets})
	comp := startRecording(t, env, st, "drain")
	w.Drain()
	second := startRecording2(t, env, st)
	time.Sleep(3 * time.Second) // time for a wrong claim to happen: nothing to wait for
	if c := state(t, env, second); c.State != types.CompositionStateStarting {
		t.Errorf("a composition started after Drain is %s on the draining worker, want STARTING (unclaimed)", c.State)
	}
	pl := filepath.Join(buckets, "drain", filepath.FromSlash(*comp.Destinations[0].Detail.S3.RecordingPrefix), "media", "hls", "180p30", "playlist.m3u8")
	before, _ := playlistSegments(t, pl)
	time.Sleep(4500 * time.Millisecond)
	if after, _ := playlistSegments(t, pl); len(after) < len(before)+2 {
		t.Errorf("the running composition went from %d to %d segments while draining", len(before), len(after))
	}
	select {
	case <-done:
		t.Fatal("Run returned while a composition was running")
	default:
	}
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: comp.Arn}); err != nil {
		t.Fatal(err)
	}
	waitState(t, env, comp.Arn, types.CompositionStateStopped, 10*time.Second)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its last composition ended")
	}
}

// startRecording2 starts a second composition of st without waiting for it.
func startRecording2(t *testing.T, env *stagetest.Env, st types.Stage) *string {
	t.Helper()
	enc := encoderConfig(t, env, 320, 180, 300_000)
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: storageConfig(t, env, "drain2"), EncoderConfigurationArns: []string{*enc}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Composition.Arn
}

// TestRedeliveryWhileTheOwnerRuns: a job whose heartbeats do not reach
// NATS within AckWait (a NATS node lost, say) is delivered again while its
// worker runs it. Delivered to that same worker, the run goes on with the
// new delivery (a second run there could not be fenced off: both carry the
// same worker id); delivered to another worker, that one asks the owner,
// which answers that it runs it, and leaves it. Either way: one run on one
// worker, one recording without a discontinuity, ended once.
func TestRedeliveryWhileTheOwnerRuns(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) { testRedelivery(t, workers) })
	}
}

func testRedelivery(t *testing.T, workers int) {
	t.Helper()
	env := stagetest.Start(t, stagetest.Options{Jobs: jobs.Config{AckWait: time.Second, MaxDeliver: 20}})
	st := env.CreateStage(t, "again")
	publish(t, env, st, "one", "teal")
	buckets := t.TempDir()
	// Heartbeats far apart: every second the job is delivered again.
	for i := range workers {
		runWorker(t, env, worker.Config{ID: fmt.Sprintf("w%d", i+1), BucketsDir: buckets, Capacity: 8, Heartbeat: time.Hour})
	}
	comp := startRecording(t, env, st, "again")
	id := (*comp.Arn)[strings.LastIndex(*comp.Arn, "/")+1:]
	owner := func() string {
		c, err := env.Store.Compositions.Get(env.Ctx, id)
		if err != nil || c.Run == nil {
			t.Fatalf("composition %s: %v", id, err)
		}
		return c.Run.Worker
	}
	first := owner()
	for range 5 { // five redeliveries' worth
		time.Sleep(time.Second)
		if now := owner(); now != first {
			t.Fatalf("the composition moved from %s to %s while %s ran it", first, now, first)
		}
	}
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: comp.Arn}); err != nil {
		t.Fatal(err)
	}
	stopped, _ := waitState(t, env, comp.Arn, types.CompositionStateStopped, 15*time.Second)
	pl := filepath.Join(buckets, "again", filepath.FromSlash(*stopped.Destinations[0].Detail.S3.RecordingPrefix),
		"media", "hls", "180p30", "playlist.m3u8")
	segs, text := playlistSegments(t, pl)
	if len(segs) < 3 || strings.Contains(text, "DISCONTINUITY") || !strings.Contains(text, "ENDLIST") {
		t.Errorf("want one run's recording, 3 or more segments, ended:\n%s", text)
	}
	for i, s := range segs {
		if s.Index != i {
			t.Errorf("segment %d is numbered %d: a second run took numbers", i, s.Index)
		}
	}
}
