package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/token/tokenservice"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
	"github.com/stagehand-rt/stagehand/worker"
)

var loopback = stagetest.Loopback

// publish runs a synth participant of the given colour until the test ends.
func publish(t *testing.T, env *stagetest.Env, st types.Stage, user, color string) {
	t.Helper()
	env.PublishSynth(t, st, env.Token(t, *st.Arn, user, nil), synth.Config{Width: 320, Height: 180, Color: color}, client.PublishOptions{})
}

func state(t *testing.T, env *stagetest.Env, arn *string) *types.Composition {
	t.Helper()
	out, err := env.API.GetComposition(env.Ctx, &ivsrealtime.GetCompositionInput{Arn: arn})
	if err != nil {
		t.Fatal(err)
	}
	return out.Composition
}

func waitState(t *testing.T, env *stagetest.Env, arn *string, want types.CompositionState, within time.Duration) (*types.Composition, time.Duration) {
	t.Helper()
	start := time.Now()
	var c *types.Composition
	testkit.WaitFor(t, within, 50*time.Millisecond, func() error {
		if c = state(t, env, arn); c.State != want {
			return fmt.Errorf("composition is %s, want %s", c.State, want)
		}
		return nil
	})
	return c, time.Since(start)
}

// TestLiveComposition: StartComposition on a live stage with two
// publishers records a 2-up composite as HLS in the local bucket; Stop
// ends it cleanly, with the playlist closed.
func TestLiveComposition(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "live")
	publish(t, env, st, "red", "red")
	publish(t, env, st, "blue", "blue")

	buckets := t.TempDir()
	runWorker(t, env, worker.Config{BucketsDir: buckets, ICEIPs: loopback.ICEIPs, Heartbeat: time.Second})

	enc := encoderConfig(t, env, 640, 360, 1_000_000)
	sc := storageConfig(t, env, "recordings")
	time.Sleep(200 * time.Millisecond) // the worker is waiting for a job
	// The worker, idle again, pulls for its next job meanwhile.
	check := testkit.CheckGoroutines(t, testkit.IdleHTTPConns, testkit.Running("jetstream.(*pullConsumer).fetch"))
	started := time.Now()
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn:  sc,
			EncoderConfigurationArns: []string{*enc},
			RecordingConfiguration:   &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Composition.Arn
	active, _ := waitState(t, env, arn, types.CompositionStateActive, 15*time.Second)
	t.Logf("StartComposition → ACTIVE in %v", time.Since(started).Round(time.Millisecond))
	if d := active.Destinations[0]; d.State != types.DestinationStateActive || d.StartTime == nil {
		t.Errorf("destination = %s, start %v", d.State, d.StartTime)
	}
	time.Sleep(6 * time.Second)
	// As in IVS, the composition is no participant of the stage.
	gs, err := env.API.GetStage(env.Ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := env.API.ListParticipants(env.Ctx, &ivsrealtime.ListParticipantsInput{StageArn: st.Arn, SessionId: gs.Stage.ActiveSessionId})
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, p := range lp.Participants {
		users = append(users, aws.ToString(p.UserId))
	}
	if slices.Sort(users); !slices.Equal(users, []string{"blue", "red"}) {
		t.Errorf("participants = %v, want the two publishers only", users)
	}
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: arn}); err != nil {
		t.Fatal(err)
	}
	stopped, took := waitState(t, env, arn, types.CompositionStateStopped, 10*time.Second)
	t.Logf("StopComposition → STOPPED in %v", took.Round(time.Millisecond))
	if stopped.EndTime == nil || stopped.Destinations[0].State != types.DestinationStateStopped {
		t.Errorf("stopped composition: end %v, destination %s", stopped.EndTime, stopped.Destinations[0].State)
	}

	// The stopped composition left nothing running: decoders, subscriptions,
	// clock, heartbeat and sinks all ended.
	check()

	prefix := *stopped.Destinations[0].Detail.S3.RecordingPrefix
	root := filepath.Join(buckets, "recordings", filepath.FromSlash(prefix))
	playlists, _ := filepath.Glob(filepath.Join(root, "media", "hls", "*", "playlist.m3u8"))
	if len(playlists) != 1 {
		files, _ := exec.Command("find", buckets).Output()
		t.Fatalf("playlists under %s: %v\n%s", root, playlists, files)
	}
	pl, _ := os.ReadFile(playlists[0])
	if !strings.Contains(string(pl), "#EXT-X-ENDLIST") || strings.Count(string(pl), "#EXTINF") < 2 {
		t.Errorf("playlist:\n%s", pl)
	}
	w2, h, dur := testmedia.ProbeVideo(t, playlists[0])
	if w2 != 640 || h != 360 || dur < 5 {
		t.Errorf("recording is %dx%d, %.1f s; want 640x360, ≥ 5 s", w2, h, dur)
	}
	// The grid shows both publishers: a red tile and a blue tile.
	rgb := frameAt(t, playlists[0], dur/2, 640, 360)
	left, right := pixel(rgb, 640, 160, 120), pixel(rgb, 640, 480, 120)
	isRed := func(p [3]byte) bool { return p[0] > 180 && p[1] < 80 && p[2] < 80 }
	isBlue := func(p [3]byte) bool { return p[2] > 180 && p[0] < 80 && p[1] < 80 }
	if !(isRed(left) && isBlue(right)) {
		t.Errorf("tiles are %v and %v, want red then blue (arrival order)", left, right)
	}
}

func frameAt(t *testing.T, path string, at float64, w, h int) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-ss", strconv.FormatFloat(at, 'f', 2, 64), "-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || len(out) != w*h*3 {
		t.Fatalf("ffmpeg frame at %.1f s: %v, %d bytes\n%s", at, err, len(out), stderr.String())
	}
	return out
}

func pixel(rgb []byte, w, x, y int) [3]byte {
	i := (y*w + x) * 3
	return [3]byte{rgb[i], rgb[i+1], rgb[i+2]}
}

// TestChannelDestination: a channel destination streams the composite to
// the RTMP server the channel maps to (nginx-rtmp, recording what it gets).
func TestChannelDestination(t *testing.T) {
	rtmpServer := testserver.StartRTMP(t)
	const channel = "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234"
	channels := map[string]string{channel: rtmpServer.URL("live")}
	env := stagetest.Start(t, stagetest.Options{Channels: channels})
	st := env.CreateStage(t, "channel")
	publish(t, env, st, "green", "green")
	runWorker(t, env, worker.Config{BucketsDir: t.TempDir(), Channels: channels, ICEIPs: loopback.ICEIPs})
	enc := encoderConfig(t, env, 640, 360, 1_000_000)
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{Channel: &types.ChannelDestinationConfiguration{
			ChannelArn: aws.String(channel), EncoderConfigurationArn: enc}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, env, out.Composition.Arn, types.CompositionStateActive, 15*time.Second)
	time.Sleep(4 * time.Second)
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: out.Composition.Arn}); err != nil {
		t.Fatal(err)
	}
	waitState(t, env, out.Composition.Arn, types.CompositionStateStopped, 10*time.Second)
	var recs []string
	testkit.WaitFor(t, 5*time.Second, 100*time.Millisecond, func() error {
		if recs = rtmpServer.Recordings("live"); len(recs) == 0 {
			return errors.New("nginx recorded nothing")
		}
		return nil
	})
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %v, want one stream", recs)
	}
	w2, h, dur := testmedia.ProbeVideo(t, recs[0])
	if w2 != 640 || h != 360 || dur < 3 {
		t.Errorf("channel got %dx%d for %.1f s; want 640x360 for ≥ 3 s", w2, h, dur)
	}
	rgb := frameAt(t, recs[0], dur/2, 640, 360)
	if p := pixel(rgb, 640, 320, 60); p[1] < 80 || p[0] > 60 || p[2] > 60 {
		t.Errorf("the single tile is %v, want green", p)
	}
}

// TestS3Destination: with an S3 server configured, the recording is
// uploaded to the storage configuration's bucket under the IVS keys.
func TestS3Destination(t *testing.T) {
	s3srv := testserver.StartS3(t)
	clientCfg := upload.ClientConfig{Endpoint: s3srv.Endpoint, AccessKey: s3srv.AccessKey, SecretKey: s3srv.SecretKey, PathStyle: true}
	s3c := upload.NewClient(clientCfg)
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("archive")}); err != nil {
		t.Fatal(err)
	}
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "s3")
	publish(t, env, st, "navy", "navy")
	runWorker(t, env, worker.Config{S3: &clientCfg, SpoolDir: t.TempDir(), ICEIPs: loopback.ICEIPs})
	enc := encoderConfig(t, env, 320, 180, 500_000)
	sc := storageConfig(t, env, "archive")
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc},
			RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, env, out.Composition.Arn, types.CompositionStateActive, 15*time.Second)
	time.Sleep(5 * time.Second)
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: out.Composition.Arn}); err != nil {
		t.Fatal(err)
	}
	stopped, took := waitState(t, env, out.Composition.Arn, types.CompositionStateStopped, 10*time.Second)
	t.Logf("StopComposition → STOPPED, uploads complete, in %v", took.Round(time.Millisecond))
	prefix := *stopped.Destinations[0].Detail.S3.RecordingPrefix
	list, err := s3c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("archive"), Prefix: aws.String(prefix + "/")})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	segments := 0
	for _, o := range list.Contents {
		k := strings.TrimPrefix(*o.Key, prefix+"/")
		keys[k] = true
		if strings.HasSuffix(k, ".ts") {
			segments++
		}
	}
	for _, want := range []string{"events/recording-started.json", "events/recording-ended.json", "media/hls/multivariant.m3u8", "media/hls/180p30/playlist.m3u8"} {
		if !keys[want] {
			t.Errorf("no object %s/%s; have %v", prefix, want, keys)
		}
	}
	if segments < 2 {
		t.Errorf("%d segments uploaded, want ≥ 2", segments)
	}
	// The stored playlist is the final one, and plays from the server's files.
	pl := filepath.Join(s3srv.Root, "archive", filepath.FromSlash(prefix), "media", "hls", "180p30", "playlist.m3u8")
	b, err := os.ReadFile(pl)
	if err != nil || !strings.Contains(string(b), "#EXT-X-ENDLIST") {
		t.Fatalf("stored playlist (%v):\n%s", err, b)
	}
	if w, h, dur := testmedia.ProbeVideo(t, pl); w != 320 || h != 180 || dur < 4 {
		t.Errorf("stored recording is %dx%d, %.1f s", w, h, dur)
	}
}

// TestIdleTimeout: a composition on a stage without publishers shows the
// background, then stops by itself after the idle timeout; one that has a
// publisher keeps running.
func TestIdleTimeout(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	empty := env.CreateStage(t, "empty")
	busy := env.CreateStage(t, "busy")
	publish(t, env, busy, "p", "purple")
	buckets := t.TempDir()
	runWorker(t, env, worker.Config{BucketsDir: buckets, ICEIPs: loopback.ICEIPs, IdleTimeout: 2 * time.Second, Capacity: 2})
	sc := storageConfig(t, env, "idle-bucket")
	encOut, err := env.API.CreateEncoderConfiguration(env.Ctx, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(180), Framerate: aws.Float32(15), Bitrate: aws.Int32(300_000)}})
	if err != nil {
		t.Fatal(err)
	}
	enc := encOut.EncoderConfiguration.Arn
	start := func(st types.Stage) *string {
		out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
			Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
				StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Composition.Arn
	}
	idle, kept := start(empty), start(busy)
	waitState(t, env, idle, types.CompositionStateActive, 15*time.Second)
	_, took := waitState(t, env, idle, types.CompositionStateStopped, 10*time.Second)
	t.Logf("the idle composition stopped %v after it was seen active (timeout 2 s)", took.Round(100*time.Millisecond))
	if c := state(t, env, kept); c.State != types.CompositionStateActive {
		t.Errorf("the composition with a publisher is %s, want ACTIVE", c.State)
	}
}

// TestAVSync measures the audio/video offset of a composite: the publisher
// flashes white and beeps at the start of every second; the recording's
// flash and beep times are compared.
func TestAVSync(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "sync")
	env.PublishSynth(t, st, env.Token(t, *st.Arn, "metronome", nil), synth.Config{Width: 320, Height: 180, SyncMarks: true, ToneHz: 1000}, client.PublishOptions{})

	buckets := t.TempDir()
	runWorker(t, env, worker.Config{BucketsDir: buckets, ICEIPs: loopback.ICEIPs})
	enc := encoderConfig(t, env, 320, 180, 500_000)
	sc := storageConfig(t, env, "sync")
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc}}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, env, out.Composition.Arn, types.CompositionStateActive, 15*time.Second)
	time.Sleep(8 * time.Second)
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: out.Composition.Arn}); err != nil {
		t.Fatal(err)
	}
	stopped, _ := waitState(t, env, out.Composition.Arn, types.CompositionStateStopped, 10*time.Second)
	pl := filepath.Join(buckets, "sync", filepath.FromSlash(*stopped.Destinations[0].Detail.S3.RecordingPrefix), "media", "hls", "180p30", "playlist.m3u8")

	flashes := onsets(t, "movie="+pl+",signalstats", "lavfi.signalstats.YAVG", 180)
	beeps := onsets(t, "amovie="+pl+",astats=metadata=1:reset=1", "lavfi.astats.Overall.RMS_level", -30)
	var offsets []float64
	for _, f := range flashes {
		for _, b := range beeps {
			if d := b - f; d > -0.5 && d < 0.5 {
				offsets = append(offsets, d)
			}
		}
	}
	if len(offsets) < 5 {
		t.Fatalf("matched %d flash/beep pairs (flashes %v, beeps %v), want ≥ 5", len(offsets), flashes, beeps)
	}
	slices.Sort(offsets)
	median := offsets[len(offsets)/2]
	t.Logf("audio − video offset over %d marks: median %+.0f ms, range %+.0f..%+.0f ms", len(offsets), median*1000, offsets[0]*1000, offsets[len(offsets)-1]*1000)
	if median < -0.04 || median > 0.04 {
		t.Errorf("audio is %+.0f ms off the video, want within ±40 ms", median*1000)
	}
}

// onsets runs a lavfi graph over a recording and returns the times at which
// the metadata key rises above threshold.
func onsets(t *testing.T, graph, key string, threshold float64) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-f", "lavfi", "-i", graph,
		"-show_entries", "frame=pts_time:frame_tags="+key, "-of", "csv=p=0").Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", graph, err)
	}
	var times []float64
	above := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 2 {
			continue
		}
		ts, err1 := strconv.ParseFloat(f[0], 64)
		v, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			above = false // -inf: silence
			continue
		}
		if v > threshold && !above {
			times = append(times, ts)
		}
		above = v > threshold
	}
	return times
}

// TestCapacity: a worker with room for one 1080p30 composite runs two
// 720p30 ones at once but not a third; the third starts when one stops.
func TestCapacity(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	runWorker(t, env, worker.Config{BucketsDir: t.TempDir(), ICEIPs: loopback.ICEIPs, Capacity: 1})
	enc := encoderConfig(t, env, 1280, 720, 500_000)
	sc := storageConfig(t, env, "capacity")
	var arns []*string
	for i := range 3 {
		st := env.CreateStage(t, "cap"+strconv.Itoa(i))
		out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
			Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
				StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc}}}}})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, out.Composition.Arn)
		if i < 2 {
			waitState(t, env, out.Composition.Arn, types.CompositionStateActive, 15*time.Second)
		}
	}
	time.Sleep(3 * time.Second) // time for a wrong claim to happen: nothing to wait for
	if s := state(t, env, arns[2]).State; s != types.CompositionStateStarting {
		t.Fatalf("the third 720p30 composition is %s on a full worker, want STARTING", s)
	}
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: arns[0]}); err != nil {
		t.Fatal(err)
	}
	_, took := waitState(t, env, arns[2], types.CompositionStateActive, 15*time.Second)
	t.Logf("the waiting composition started %v after room was made", took.Round(100*time.Millisecond))
}

// TestPlaceholder: a participant who publishes audio only gets a
// placeholder tile beside one with video.
func TestPlaceholder(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "placeholder")
	publish(t, env, st, "seen", "yellow")
	tok := env.Token(t, *st.Arn, "heard", nil)
	src, err := synth.New(synth.Config{Width: 160, Height: 90})
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{Options: loopback, NoVideo: true})
	if err != nil {
		t.Fatal(err)
	}
	pctx, stopPub := context.WithCancel(env.Ctx)
	var pwg sync.WaitGroup
	pwg.Go(func() { _ = src.Run(pctx, nil, p.Audio) })
	t.Cleanup(func() { stopPub(); pwg.Wait(); src.Close(); _ = p.Close(context.Background()) })

	buckets := t.TempDir()
	runWorker(t, env, worker.Config{BucketsDir: buckets, ICEIPs: loopback.ICEIPs})
	enc := encoderConfig(t, env, 640, 360, 500_000)
	sc := storageConfig(t, env, "placeholder")
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc}}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, env, out.Composition.Arn, types.CompositionStateActive, 15*time.Second)
	time.Sleep(4 * time.Second)
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: out.Composition.Arn}); err != nil {
		t.Fatal(err)
	}
	stopped, _ := waitState(t, env, out.Composition.Arn, types.CompositionStateStopped, 10*time.Second)
	pl := filepath.Join(buckets, "placeholder", filepath.FromSlash(*stopped.Destinations[0].Detail.S3.RecordingPrefix), "media", "hls", "360p30", "playlist.m3u8")
	_, _, dur := testmedia.ProbeVideo(t, pl)
	rgb := frameAt(t, pl, dur/2, 640, 360)
	left, right := pixel(rgb, 640, 160, 150), pixel(rgb, 640, 480, 150)
	near := func(p [3]byte, want [3]byte) bool {
		for i := range 3 {
			if d := int(p[i]) - int(want[i]); d > 40 || d < -40 {
				return false
			}
		}
		return true
	}
	if !near(left, [3]byte{255, 255, 0}) || !near(right, [3]byte{0x2b, 0x2b, 0x2b}) {
		t.Errorf("tiles %v and %v, want yellow video then the grey placeholder", left, right)
	}
}

// runWorker runs a worker on env until the test ends; cfg gets the
// loopback ICE address when it names none.
func runWorker(t *testing.T, env *stagetest.Env, cfg worker.Config) (stop func()) {
	t.Helper()
	_, stop = startWorker(t, env, cfg)
	return stop
}

// runWorkerHandle is runWorker that returns the worker.
func runWorkerHandle(t *testing.T, env *stagetest.Env, cfg worker.Config) *worker.Worker {
	t.Helper()
	w, _ := startWorker(t, env, cfg)
	return w
}

func startWorker(t *testing.T, env *stagetest.Env, cfg worker.Config) (*worker.Worker, func()) {
	t.Helper()
	w, stop, _ := startWorkerDone(t, env, cfg)
	return w, stop
}

// startWorkerDone is startWorker that also returns a channel closed when
// Run returned.
func startWorkerDone(t *testing.T, env *stagetest.Env, cfg worker.Config) (*worker.Worker, func(), <-chan struct{}) {
	t.Helper()
	signer, err := tokenstore.LoadSigner(env.Ctx, env.Store, ivs.Namespace{Region: stagetest.Region, Account: stagetest.Account})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ICEIPs == nil {
		cfg.ICEIPs = loopback.ICEIPs
	}
	// The worker asks for its tokens as a fleet's worker does: over NATS.
	sub, err := tokenservice.Serve(env.NC, "test.tokens", tokenservice.Minter{Store: env.Store, Signer: signer},
		slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	w, err := worker.New(cfg, env.Store, env.Queue, tokenservice.Client{NC: env.NC, Subject: "test.tokens"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(env.Ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { defer close(done); _ = w.Run(ctx) })
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return w, stop, done
}

// encoderConfig creates an encoder configuration through the API.
func encoderConfig(t *testing.T, env *stagetest.Env, w, h, bitrate int32) *string {
	t.Helper()
	out, err := env.API.CreateEncoderConfiguration(env.Ctx, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(w), Height: aws.Int32(h), Framerate: aws.Float32(30), Bitrate: aws.Int32(bitrate)}})
	if err != nil {
		t.Fatal(err)
	}
	return out.EncoderConfiguration.Arn
}

// storageConfig creates a storage configuration of bucket through the API.
func storageConfig(t *testing.T, env *stagetest.Env, bucket string) *string {
	t.Helper()
	out, err := env.API.CreateStorageConfiguration(env.Ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}})
	if err != nil {
		t.Fatal(err)
	}
	return out.StorageConfiguration.Arn
}
