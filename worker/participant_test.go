package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/token/tokenservice"
	"github.com/stagehand-rt/stagehand/worker"
)

// recPublisher publishes a synth participant with tok until leave.
func recPublisher(t *testing.T, env *stagetest.Env, st types.Stage, tok types.ParticipantToken, colour, codec string) (leave func()) {
	t.Helper()
	mime := webrtc.MimeTypeVP8
	if codec == synth.H264 {
		mime = webrtc.MimeTypeH264
	}
	return env.PublishSynth(t, st, tok, synth.Config{Width: 320, Height: 180, Color: colour, VideoCodec: codec}, client.PublishOptions{VideoCodec: mime})
}

// recordingEnv is a stage recording its participants into versitygw.
type recordingEnv struct {
	env        *stagetest.Env
	s3         *testserver.S3
	stage      types.Stage
	cfg        worker.Config // of the worker running, to start another
	stopWorker func()
}

func startRecordingEnv(t *testing.T, rec *types.AutoParticipantRecordingConfiguration) *recordingEnv {
	t.Helper()
	s3srv := testserver.StartS3(t)
	clientCfg := upload.ClientConfig{Endpoint: s3srv.Endpoint, AccessKey: s3srv.AccessKey, SecretKey: s3srv.SecretKey, PathStyle: true}
	if _, err := upload.NewClient(clientCfg).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("participants")}); err != nil {
		t.Fatal(err)
	}
	env := stagetest.Start(t, stagetest.Options{})
	rec.StorageConfigurationArn = storageConfig(t, env, "participants")
	out, err := env.API.CreateStage(env.Ctx, &ivsrealtime.CreateStageInput{Name: aws.String("rec"), AutoParticipantRecordingConfiguration: rec})
	if err != nil {
		t.Fatal(err)
	}
	cfg := worker.Config{S3: &clientCfg, SpoolDir: t.TempDir(), Heartbeat: time.Second}
	stop := runWorker(t, env, cfg)
	return &recordingEnv{env: env, s3: s3srv, stage: *out.Stage, cfg: cfg, stopWorker: stop}
}

// participant reads GetParticipant in the stage's session.
func (r *recordingEnv) participant(t *testing.T, pid string) *types.Participant {
	t.Helper()
	ss, err := r.env.API.ListStageSessions(r.env.Ctx, &ivsrealtime.ListStageSessionsInput{StageArn: r.stage.Arn})
	if err != nil || len(ss.StageSessions) == 0 {
		t.Fatalf("stage sessions: %v", err)
	}
	out, err := r.env.API.GetParticipant(r.env.Ctx, &ivsrealtime.GetParticipantInput{StageArn: r.stage.Arn,
		SessionId: ss.StageSessions[0].SessionId, ParticipantId: aws.String(pid)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Participant
}

// waitRecording waits until pid's recordingState is want and returns the
// participant and the states seen on the way.
func (r *recordingEnv) waitRecording(t *testing.T, pid string, want types.ParticipantRecordingState, within time.Duration) (*types.Participant, []types.ParticipantRecordingState) {
	t.Helper()
	var seen []types.ParticipantRecordingState
	var p *types.Participant
	testkit.WaitFor(t, within, 100*time.Millisecond, func() error {
		p = r.participant(t, pid)
		if len(seen) == 0 || seen[len(seen)-1] != p.RecordingState {
			seen = append(seen, p.RecordingState)
		}
		if p.RecordingState != want {
			return fmt.Errorf("participant %s: recordingState %v, want %s", pid, seen, want)
		}
		return nil
	})
	return p, seen
}

// objects lists the keys under prefix/, relative to it.
func (r *recordingEnv) objects(t *testing.T, prefix string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	root := filepath.Join(r.s3.Root, "participants", filepath.FromSlash(prefix))
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(root, p)
			keys[filepath.ToSlash(rel)] = true
		}
		return err
	})
	if err != nil {
		t.Fatalf("objects under %s: %v", prefix, err)
	}
	return keys
}

func (r *recordingEnv) path(prefix, rel string) string {
	return filepath.Join(r.s3.Root, "participants", filepath.FromSlash(prefix), filepath.FromSlash(rel))
}

// TestParticipantRecording: two publishers (VP8, transcoded; H.264,
// remuxed) on a stage that records participants: each gets its own HLS
// recording under IVS's key layout in the bucket, with events and
// thumbnails, and GetParticipant follows its states.
func TestParticipantRecording(t *testing.T) {
	r := startRecordingEnv(t, &types.AutoParticipantRecordingConfiguration{
		HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)},
		ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{RecordingMode: types.ThumbnailRecordingModeInterval,
			TargetIntervalSeconds: aws.Int32(2), Storage: []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential, types.ThumbnailStorageTypeLatest}},
	})
	stageID := strings.TrimPrefix(*r.stage.Arn, "arn:aws:ivs:us-east-1:123456789012:stage/")
	cases := []struct {
		colour, codec string
		pid           string
		leave         func()
	}{{colour: "red", codec: synth.VP8}, {colour: "blue", codec: synth.H264}}
	for i := range cases {
		c := &cases[i]
		tok := r.env.Token(t, *r.stage.Arn, c.colour, nil)
		c.pid = *tok.ParticipantId
		c.leave = recPublisher(t, r.env, r.stage, tok, c.colour, c.codec)
	}
	for _, c := range cases {
		p, seen := r.waitRecording(t, c.pid, types.ParticipantRecordingStateActive, 20*time.Second)
		t.Logf("%s (%s): states %v, bucket %s, prefix %s", c.colour, c.codec, seen, *p.RecordingS3BucketName, *p.RecordingS3Prefix)
	}
	time.Sleep(7 * time.Second)
	for _, c := range cases {
		c.leave()
	}
	for _, c := range cases {
		p, seen := r.waitRecording(t, c.pid, types.ParticipantRecordingStateStopped, 30*time.Second)
		prefix := *p.RecordingS3Prefix
		if *p.RecordingS3BucketName != "participants" || !strings.HasPrefix(prefix, stageID+"/st-") || !strings.Contains(prefix, "/"+c.pid+"/") {
			t.Errorf("%s: bucket %s prefix %s, want participants and %s/<session>/%s/<ms>", c.colour, *p.RecordingS3BucketName, prefix, stageID, c.pid)
		}
		t.Logf("%s: states %v", c.colour, seen)
		checkRecording(t, r, c.colour, prefix, 320, 180, 6)
	}
	// Every goroutine of the recordings ended: none runs recording,
	// decoding, thumbnail, upload or WebRTC code (idle HTTP keep-alive
	// connections and NATS remain, as they do without recordings).
	testkit.CheckNoneRunning(t, "stagehand/recording", "stagehand/trackdecode", "stagehand/sink/", "stagehand/stage/client", "pion/")
}

// checkRecording checks one stopped recording's objects, media and
// thumbnails.
func checkRecording(t *testing.T, r *recordingEnv, colour, prefix string, w, h int, minSeconds float64) {
	t.Helper()
	keys := r.objects(t, prefix)
	for _, want := range []string{"events/recording-started.json", "events/recording-ended.json", "media/hls/multivariant.m3u8",
		"media/hls/high/playlist.m3u8", "media/hls/high/init-0.mp4", "media/hls/high/0.mp4",
		"media/thumbnails/high/0.jpg", "media/thumbnails/high/1.jpg", "media/latest_thumbnail/high/thumb.jpg"} {
		if !keys[want] {
			t.Errorf("%s: no object %s/%s; have %v", colour, prefix, want, keys)
		}
	}
	pl, err := os.ReadFile(r.path(prefix, "media/hls/high/playlist.m3u8"))
	if err != nil || !strings.Contains(string(pl), "#EXT-X-ENDLIST") {
		t.Fatalf("%s: playlist (%v):\n%s", colour, err, pl)
	}
	probe := testmedia.FFprobe(t, "-show_format", "-show_streams", r.path(prefix, "media/hls/multivariant.m3u8"))
	if got := strings.Join(probe.Codecs(), ","); got != "h264,aac" {
		t.Errorf("%s: codecs %s, want h264,aac", colour, got)
	}
	if s := probe.Streams[0]; s.Width != w || s.Height != h {
		t.Errorf("%s: %dx%d, want %dx%d", colour, s.Width, s.Height, w, h)
	}
	if d := probe.Duration(t); d < minSeconds || d > minSeconds+6 {
		t.Errorf("%s: %.2f s recorded, want %.0f..%.0f", colour, d, minSeconds, minSeconds+6)
	}
	var ev struct {
		Status        string `json:"recording_status"`
		SessionID     string `json:"session_id"`
		ParticipantID string `json:"participant_id"`
		Media         struct {
			HLS struct {
				DurationMS int64 `json:"duration_ms"`
			} `json:"hls"`
		} `json:"media"`
	}
	b, _ := os.ReadFile(r.path(prefix, "events/recording-ended.json"))
	if err := json.Unmarshal(b, &ev); err != nil || ev.Status != "RECORDING_ENDED" || ev.Media.HLS.DurationMS < int64(minSeconds*1000) || !strings.Contains(prefix, ev.SessionID+"/"+ev.ParticipantID) {
		t.Errorf("%s: recording-ended.json (%v):\n%s", colour, err, b)
	}
	checkThumbnail(t, colour, r.path(prefix, "media/latest_thumbnail/high/thumb.jpg"), w, h)
}

// checkThumbnail decodes a JPEG thumbnail: its size, and the synth's
// colour in its top-left area.
func checkThumbnail(t *testing.T, colour, path string, w, h int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: thumbnail %s: %v", colour, path, err)
	}
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Errorf("%s: thumbnail %dx%d, want %dx%d", colour, got.X, got.Y, w, h)
	}
	cr, cg, cb, _ := img.At(w/8, h/8).RGBA()
	got := [3]byte{byte(cr >> 8), byte(cg >> 8), byte(cb >> 8)}
	want := colours[colour]
	for i := range 3 {
		if d := int(got[i]) - int(want[i]); d > 40 || d < -40 {
			t.Errorf("%s: thumbnail pixel %v, want about %v", colour, got, want)
			break
		}
	}
}

// TestParticipantRecordingWorkerShutdown: the worker recording a
// participant shuts down while they publish. Its recording ends complete
// (STOPPED, ENDLIST, recording-ended), and another worker records the
// rest of the publish in a new recording, without the participant doing
// anything.
func TestParticipantRecordingWorkerShutdown(t *testing.T) {
	r := startRecordingEnv(t, &types.AutoParticipantRecordingConfiguration{
		HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)},
		ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{RecordingMode: types.ThumbnailRecordingModeInterval,
			TargetIntervalSeconds: aws.Int32(2), Storage: []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential, types.ThumbnailStorageTypeLatest}},
	})
	tok := r.env.Token(t, *r.stage.Arn, "lime", nil)
	pid := *tok.ParticipantId
	leave := recPublisher(t, r.env, r.stage, tok, "lime", synth.H264)
	first, _ := r.waitRecording(t, pid, types.ParticipantRecordingStateActive, 20*time.Second)
	time.Sleep(5 * time.Second)
	cfg := r.cfg
	cfg.SpoolDir = t.TempDir()
	runWorker(t, r.env, cfg) // the worker that takes over
	stopped := time.Now()
	r.stopWorker()
	var next *types.Participant
	testkit.WaitFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		p := r.participant(t, pid)
		if *p.RecordingS3Prefix == *first.RecordingS3Prefix || p.RecordingState != types.ParticipantRecordingStateActive {
			return fmt.Errorf("no new recording ACTIVE after the worker stopped; participant %+v", p)
		}
		next = p
		return nil
	})
	t.Logf("worker stopped: the next recording ACTIVE after %v under %s", time.Since(stopped).Round(time.Millisecond), *next.RecordingS3Prefix)
	// The first recording is complete on its own.
	checkRecording(t, r, "lime", *first.RecordingS3Prefix, 320, 180, 5)
	time.Sleep(4 * time.Second)
	leave()
	last, _ := r.waitRecording(t, pid, types.ParticipantRecordingStateStopped, 30*time.Second)
	if *last.RecordingS3Prefix != *next.RecordingS3Prefix {
		t.Errorf("the participant shows %s, want the continuing recording %s", *last.RecordingS3Prefix, *next.RecordingS3Prefix)
	}
	checkRecording(t, r, "lime", *next.RecordingS3Prefix, 320, 180, 4)
}

// TestParticipantReconnect: a publisher that drops and rejoins within
// recordingReconnectWindowSeconds continues its recording (same prefix,
// a second run after EXT-X-DISCONTINUITY); one that rejoins after the
// window gets a new recording.
func TestParticipantReconnect(t *testing.T) {
	r := startRecordingEnv(t, &types.AutoParticipantRecordingConfiguration{
		HlsConfiguration:                &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)},
		RecordingReconnectWindowSeconds: 4,
	})
	tok := r.env.Token(t, *r.stage.Arn, "lime", nil)
	pid := *tok.ParticipantId
	leave := recPublisher(t, r.env, r.stage, tok, "lime", synth.H264)
	first, _ := r.waitRecording(t, pid, types.ParticipantRecordingStateActive, 20*time.Second)
	time.Sleep(4 * time.Second)
	leave()
	time.Sleep(time.Second) // within the window
	if p := r.participant(t, pid); p.RecordingState != types.ParticipantRecordingStateActive {
		t.Errorf("within the window: recordingState %s, want ACTIVE", p.RecordingState)
	}
	leave = recPublisher(t, r.env, r.stage, tok, "lime", synth.H264)
	time.Sleep(5 * time.Second)
	if p := r.participant(t, pid); *p.RecordingS3Prefix != *first.RecordingS3Prefix {
		t.Errorf("after a reconnect within the window: prefix %s, want %s", *p.RecordingS3Prefix, *first.RecordingS3Prefix)
	}
	leave()
	p, seen := r.waitRecording(t, pid, types.ParticipantRecordingStateStopped, 20*time.Second)
	t.Logf("states after the last leave: %v", seen)
	prefix := *p.RecordingS3Prefix
	pl, err := os.ReadFile(r.path(prefix, "media/hls/high/playlist.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pl), "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"") || strings.Count(string(pl), "#EXT-X-PROGRAM-DATE-TIME") != 2 {
		t.Errorf("continued playlist lacks a second run:\n%s", pl)
	}
	probe := testmedia.FFprobe(t, "-show_format", "-show_streams", r.path(prefix, "media/hls/multivariant.m3u8"))
	if d := probe.Duration(t); d < 7 {
		t.Errorf("continued recording lasts %.2f s, want ≥ 7 (two spans of 4-5 s)", d)
	}
	// After the window: a new recording under a new prefix.
	leave = recPublisher(t, r.env, r.stage, tok, "lime", synth.H264)
	again, _ := r.waitRecording(t, pid, types.ParticipantRecordingStateActive, 20*time.Second)
	if *again.RecordingS3Prefix == prefix {
		t.Errorf("a publish after the window continued %s", prefix)
	}
	leave()
	r.waitRecording(t, pid, types.ParticipantRecordingStateStopped, 20*time.Second)
}

// TestParticipantAudioOnly: mediaTypes AUDIO_ONLY records AAC alone.
func TestParticipantAudioOnly(t *testing.T) {
	r := startRecordingEnv(t, &types.AutoParticipantRecordingConfiguration{
		MediaTypes:       []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioOnly},
		HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)},
	})
	tok := r.env.Token(t, *r.stage.Arn, "red", nil)
	leave := recPublisher(t, r.env, r.stage, tok, "red", synth.VP8)
	r.waitRecording(t, *tok.ParticipantId, types.ParticipantRecordingStateActive, 20*time.Second)
	time.Sleep(5 * time.Second)
	leave()
	p, _ := r.waitRecording(t, *tok.ParticipantId, types.ParticipantRecordingStateStopped, 20*time.Second)
	probe := testmedia.FFprobe(t, "-show_format", "-show_streams", r.path(*p.RecordingS3Prefix, "media/hls/multivariant.m3u8"))
	if got := strings.Join(probe.Codecs(), ","); got != "aac" {
		t.Errorf("codecs %s, want aac", got)
	}
	if d := probe.Duration(t); d < 4 || d > 8 {
		t.Errorf("%.2f s recorded, want about 5", d)
	}
}

// TestTokenPrefix: the tokens control mints for workers name participants
// the stage treats as composition subscribers.
func TestTokenPrefix(t *testing.T) {
	if tokenservice.ParticipantPrefix != stage.CompositionParticipantPrefix {
		t.Fatalf("tokenservice mints %q…, the stage hides %q…", tokenservice.ParticipantPrefix,
			stage.CompositionParticipantPrefix)
	}
}
