package ingest_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/avframe"
	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/token/tokenservice"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
	"github.com/stagehand-rt/stagehand/worker"
)

var loopback = stagetest.Loopback

// received is what a WHEP subscriber decoded.
type received struct {
	mu         sync.Mutex
	frames     int
	w, h       int
	yuv        [3]byte // the centre pixel of the last frame
	samples    int
	sumSquares float64
	audioCodec string
	videoCodec string
}

func (r *received) onVideo(f *astiav.Frame, _ uint32) {
	y, ly := avframe.VideoPlane(f, 0)
	u, lu := avframe.VideoPlane(f, 1)
	v, lv := avframe.VideoPlane(f, 2)
	cx, cy := f.Width()/2, f.Height()/2
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames++
	r.w, r.h = f.Width(), f.Height()
	r.yuv = [3]byte{y[cy*ly+cx], u[cy/2*lu+cx/2], v[cy/2*lv+cx/2]}
}

func (r *received) onAudio(f *astiav.Frame, _ uint32) {
	left := avframe.AudioPlane(f, 0) // planar float
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i+4 <= len(left) && i/4 < f.NbSamples(); i += 4 {
		s := float64(math.Float32frombits(binary.LittleEndian.Uint32(left[i:])))
		r.sumSquares += s * s
	}
	r.samples += f.NbSamples()
}

func (r *received) rms() float64 {
	if r.samples == 0 {
		return 0
	}
	return math.Sqrt(r.sumSquares / float64(r.samples))
}

// decode decodes every track of a subscription until it ends.
func (r *received) decode(t *testing.T, wg *sync.WaitGroup) func(*webrtc.TrackRemote, *webrtc.RTPReceiver) {
	t.Helper()
	return func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		defer wg.Done()
		r.mu.Lock()
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			r.audioCodec = tr.Codec().MimeType
		} else {
			r.videoCodec = tr.Codec().MimeType
		}
		r.mu.Unlock()
		stagetest.DecodeTrack(t, tr, r.onVideo, r.onAudio, nil)
	}
}

// TestPublishIntoStage: Debian's ffmpeg publishes a red 320x240 test
// pattern and a tone over RTMPS with an ingest configuration's stream key.
// The stage has an RTMPS participant with the configuration's ids; a WHEP
// subscriber decodes red 320x240 video and the tone as Opus; a composition
// records it, red, into the bucket; the configuration is ACTIVE while it
// publishes and INACTIVE after; the events are exactly JOINED,
// PUBLISH_STARTED, PUBLISH_STOPPED, LEFT.
func TestPublishIntoStage(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	logs := &testkit.SyncBuffer{}
	srv := startIngest(t, env, logs)
	st := env.CreateStage(t, "rtmps")
	ic := createIngest(t, env, *st.Arn, types.IngestProtocolRtmps, false, "obs", map[string]string{"featured": "true"})
	pid := *ic.ParticipantId
	buckets := t.TempDir()
	runWorker(t, env, worker.Config{BucketsDir: buckets, Heartbeat: time.Second})

	url := fmt.Sprintf("rtmps://%s/app/%s", srv.RTMPSAddr(), *ic.StreamKey)
	ff := startFFmpeg(t, url, append(publishArgs("red", 12), "-tls_verify", "0")...)
	var started time.Time
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, testkit.Until("PUBLISH_STARTED", func() bool {
		gs, err := env.API.GetStage(env.Ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
		if err != nil || gs.Stage.ActiveSessionId == nil {
			return false
		}
		out, err := env.API.ListParticipantEvents(env.Ctx, &ivsrealtime.ListParticipantEventsInput{
			StageArn: st.Arn, SessionId: gs.Stage.ActiveSessionId, ParticipantId: aws.String(pid)})
		if err != nil {
			return false
		}
		for _, e := range out.Events {
			if e.Name == types.EventNamePublishStarted {
				started = *e.EventTime
				return true
			}
		}
		return false
	}))
	t.Logf("ffmpeg start → PUBLISH_STARTED: %v (ffmpeg's own start-up included)", started.Sub(ff.started).Round(time.Millisecond))
	if s := ingestState(t, env, ic.Arn); s != types.IngestConfigurationStateActive {
		t.Errorf("state while publishing = %s, want ACTIVE", s)
	}
	checkParticipant(t, env, st, ic)

	// A composition records the RTMP participant.
	comp := startComposition(t, env, st)

	// A WHEP subscriber decodes it.
	tok := env.Token(t, *st.Arn, "viewer", nil, types.ParticipantTokenCapabilitySubscribe)
	var rx received
	var wg sync.WaitGroup
	sub, err := client.Subscribe(ctx(t, 10*time.Second), client.WHEPURL(*st.Endpoints.Whip, pid), *tok.Token, loopback, rx.decode(t, &wg))
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 8*time.Second, 50*time.Millisecond, testkit.Until("60 decoded frames and 1 s of audio", func() bool {
		rx.mu.Lock()
		defer rx.mu.Unlock()
		return rx.frames >= 60 && rx.samples >= 48000
	}))
	_ = sub.Close(context.Background())
	wg.Wait()
	rx.mu.Lock()
	// Red in BT.601 limited range: Y 81, U 90, V 240.
	if rx.w != 320 || rx.h != 240 || rx.yuv[2] < 220 || rx.yuv[1] > 110 || rx.yuv[0] < 60 || rx.yuv[0] > 100 {
		t.Errorf("subscriber decoded %dx%d, centre YUV %v; want 320x240 red (81, 90, 240)", rx.w, rx.h, rx.yuv)
	}
	// A full-scale sine has an RMS of 0.707; lavfi's sine is at 1/8.
	if !strings.EqualFold(rx.audioCodec, webrtc.MimeTypeOpus) || !strings.EqualFold(rx.videoCodec, webrtc.MimeTypeH264) || rx.rms() < 0.03 {
		t.Errorf("subscriber got %s + %s, audio RMS %.3f; want H.264 + Opus with the tone", rx.videoCodec, rx.audioCodec, rx.rms())
	}
	t.Logf("subscriber: %d frames %dx%d, %d samples, RMS %.3f", rx.frames, rx.w, rx.h, rx.samples, rx.rms())
	rx.mu.Unlock()

	stopComposition(t, env, comp, buckets)
	if err := ff.wait(t, 20*time.Second); err != nil {
		t.Errorf("ffmpeg: %v\n%s", err, ff.stderr.String())
	}
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, testkit.Until("INACTIVE", func() bool {
		return ingestState(t, env, ic.Arn) == types.IngestConfigurationStateInactive
	}))
	want := []string{"JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"}
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, testkit.Until("LEFT", func() bool { return len(events(t, env, *st.Arn, pid)) >= 4 }))
	if got := events(t, env, *st.Arn, pid); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "RTMP publishing") {
			t.Logf("server: %s", l[strings.Index(l, "msg="):]) // connect → tracks published
		}
	}
	if !strings.Contains(logs.String(), "RTMP publish ended") {
		t.Errorf("no end of publish logged:\n%s", logs)
	}
	srv.Close()
	testkit.CheckNoneRunning(t, "stagehand/ingest.")
}

func checkParticipant(t *testing.T, env *stagetest.Env, st types.Stage, ic types.IngestConfiguration) {
	t.Helper()
	gs, err := env.API.GetStage(env.Ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
	if err != nil {
		t.Fatal(err)
	}
	out, err := env.API.GetParticipant(env.Ctx, &ivsrealtime.GetParticipantInput{StageArn: st.Arn,
		SessionId: gs.Stage.ActiveSessionId, ParticipantId: ic.ParticipantId})
	if err != nil {
		t.Fatal(err)
	}
	p := out.Participant
	if p.Protocol != types.ParticipantProtocolRtmps || aws.ToString(p.UserId) != "obs" || p.Attributes["featured"] != "true" ||
		p.State != types.ParticipantStateConnected || !p.Published {
		t.Errorf("participant = protocol %s user %q attributes %v state %s published %v; want RTMPS obs featured CONNECTED true",
			p.Protocol, aws.ToString(p.UserId), p.Attributes, p.State, p.Published)
	}
}

func startComposition(t *testing.T, env *stagetest.Env, st types.Stage) *string {
	t.Helper()
	enc, err := env.API.CreateEncoderConfiguration(env.Ctx, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(180), Framerate: aws.Float32(30), Bitrate: aws.Int32(500_000)}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := env.API.CreateStorageConfiguration(env.Ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String("recordings")}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn:  sc.StorageConfiguration.Arn,
			EncoderConfigurationArns: []string{*enc.EncoderConfiguration.Arn},
			RecordingConfiguration:   &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)}},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitComposition(t, env, out.Composition.Arn, types.CompositionStateActive, 15*time.Second)
	return out.Composition.Arn
}

func waitComposition(t *testing.T, env *stagetest.Env, arn *string, want types.CompositionState, within time.Duration) *types.Composition {
	t.Helper()
	var c *types.Composition
	testkit.WaitFor(t, within, 50*time.Millisecond, testkit.Until("composition "+string(want), func() bool {
		out, err := env.API.GetComposition(env.Ctx, &ivsrealtime.GetCompositionInput{Arn: arn})
		if err != nil {
			t.Fatal(err)
		}
		c = out.Composition
		return c.State == want
	}))
	return c
}

// stopComposition lets the composition record 5 s more, stops it and
// checks the recording: 320x180, at least 4 s, the red participant in
// the middle.
func stopComposition(t *testing.T, env *stagetest.Env, arn *string, buckets string) {
	t.Helper()
	time.Sleep(5 * time.Second)
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: arn}); err != nil {
		t.Fatal(err)
	}
	c := waitComposition(t, env, arn, types.CompositionStateStopped, 15*time.Second)
	prefix := *c.Destinations[0].Detail.S3.RecordingPrefix
	pl := filepath.Join(buckets, "recordings", filepath.FromSlash(prefix), "media", "hls", "180p30", "playlist.m3u8")
	w, h, dur := testmedia.ProbeVideo(t, pl)
	if w != 320 || h != 180 || dur < 4 {
		t.Fatalf("recording %s is %dx%d for %.1f s; want 320x180 for ≥ 4 s", pl, w, h, dur)
	}
	if p := centre(t, pl, dur-1, w, h); p[0] < 180 || p[1] > 80 || p[2] > 80 {
		t.Errorf("the recording's centre 1 s before its end is %v, want red", p)
	}
	t.Logf("recording: %dx%d, %.1f s", w, h, dur)
}

// runWorker runs a composition worker on env until the test ends.
func runWorker(t *testing.T, env *stagetest.Env, cfg worker.Config) {
	t.Helper()
	signer, err := tokenstore.LoadSigner(env.Ctx, env.Store, ivs.Namespace{Region: stagetest.Region, Account: stagetest.Account})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ICEIPs = loopback.ICEIPs
	w, err := worker.New(cfg, env.Store, env.Queue, tokenservice.Minter{Store: env.Store, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(env.Ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(c) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}
