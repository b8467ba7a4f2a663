package worker_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/worker"
)

// TestLatency measures the live path; it is a measurement, not a check,
// and runs only when STAGEHAND_LATENCY is set (make bench-latency):
//
//   - added latency: a synth publisher flashes its picture white for one
//     frame every second; the time from writing that frame to its WebRTC
//     track (RTP out over loopback, so RTP in at the worker) to the flash
//     coming out of the RTMP stream, decoded by an FFmpeg RTMP listener;
//   - StartComposition → the first frame out of the RTMP stream.
//
// Both include the receiver's demuxing and decoding of one frame, so they
// are upper bounds of what the worker adds.
func TestLatency(t *testing.T) {
	if os.Getenv("STAGEHAND_LATENCY") == "" {
		t.Skip("a measurement: set STAGEHAND_LATENCY=1 (make bench-latency)")
	}
	seconds := 20
	url, frames := startRTMPListener(t)
	const channel = "arn:aws:ivs:us-east-1:123456789012:channel/latency00001"
	channels := map[string]string{channel: url}
	env := stagetest.Start(t, stagetest.Options{Channels: channels})
	st := env.CreateStage(t, "latency")
	flashes := publishFlashes(t, env, st)
	runWorker(t, env, worker.Config{BucketsDir: t.TempDir(), Channels: channels, ICEIPs: loopback.ICEIPs})
	enc := encoderConfig(t, env, 1280, 720, 2_500_000)
	time.Sleep(500 * time.Millisecond) // the publisher is flowing, the worker waiting for a job

	started := time.Now()
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{Channel: &types.ChannelDestinationConfiguration{
			ChannelArn: aws.String(channel), EncoderConfigurationArn: enc}}}})
	if err != nil {
		t.Fatal(err)
	}
	active := make(chan time.Time, 1)
	go func() { active <- waitActive(env, out.Composition.Arn) }()
	var first time.Time
	var lat []time.Duration
	deadline := time.After(time.Duration(seconds) * time.Second)
loop:
	for {
		select {
		case f := <-frames:
			if first.IsZero() {
				first = f.at
			}
			if f.bright {
				if in, ok := flashes.before(f.at); ok {
					lat = append(lat, f.at.Sub(in))
				}
			}
		case <-deadline:
			break loop
		}
	}
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: out.Composition.Arn}); err != nil {
		t.Fatal(err)
	}
	if first.IsZero() {
		t.Fatal("no frame came out of the RTMP stream")
	}
	t.Logf("StartComposition → first RTMP frame decoded: %v (composition ACTIVE after %v)", first.Sub(started).Round(time.Millisecond),
		(<-active).Sub(started).Round(time.Millisecond))
	if len(lat) == 0 {
		t.Fatal("no flash came through")
	}
	slices.Sort(lat)
	t.Logf("RTP in → RTMP out, %d flashes: p50 %v, p95 %v, max %v", len(lat),
		pct(lat, 50).Round(time.Millisecond), pct(lat, 95).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}

// waitActive polls GetComposition until the composition is ACTIVE (the
// worker claimed it and its pipeline started) and returns when it saw it.
func waitActive(env *stagetest.Env, arn *string) time.Time {
	for range 500 {
		out, err := env.API.GetComposition(env.Ctx, &ivsrealtime.GetCompositionInput{Arn: arn})
		if err == nil && out.Composition.State == types.CompositionStateActive {
			return time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}
}

func pct(d []time.Duration, p int) time.Duration { return d[min(len(d)-1, len(d)*p/100)] }

// flashLog records when the publisher wrote each white frame.
type flashLog struct {
	mu    sync.Mutex
	times []time.Time
}

// before returns the last flash written before t, if it is less than a
// second old (flashes are a second apart).
func (l *flashLog) before(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.times) - 1; i >= 0; i-- {
		if l.times[i].Before(t) {
			return l.times[i], t.Sub(l.times[i]) < time.Second
		}
	}
	return time.Time{}, false
}

// flashWriter passes samples to the track and notes when every fps-th one,
// the synth's white SyncMarks frame, was written.
type flashWriter struct {
	w   synth.SampleWriter
	fps int
	n   int
	log *flashLog
}

func (f *flashWriter) WriteSample(s media.Sample) error {
	err := f.w.WriteSample(s)
	if f.n%f.fps == 0 {
		f.log.mu.Lock()
		f.log.times = append(f.log.times, time.Now())
		f.log.mu.Unlock()
	}
	f.n++
	return err
}

func publishFlashes(t *testing.T, env *stagetest.Env, st types.Stage) *flashLog {
	t.Helper()
	tok := env.Token(t, *st.Arn, "flash", nil)
	src, err := synth.New(synth.Config{Width: 640, Height: 360, Color: "black", SyncMarks: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{Options: loopback, OnKeyframeRequest: src.RequestKeyframe})
	if err != nil {
		t.Fatal(err)
	}
	log := &flashLog{}
	ctx, cancel := context.WithCancel(env.Ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = src.Run(ctx, &flashWriter{w: p.Video, fps: src.Config().FPS, log: log}, p.Audio) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		src.Close()
		_ = p.Close(context.Background())
	})
	return log
}

type outFrame struct {
	at     time.Time
	bright bool
}

// startRTMPListener runs FFmpeg as an RTMP server that decodes what it
// receives into tiny grey frames on a pipe, each stamped when it arrives.
func startRTMPListener(t *testing.T) (string, <-chan outFrame) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/latency", port)
	const w, h = 32, 18
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-loglevel", "error", "-fflags", "nobuffer", "-flags", "low_delay",
		"-probesize", "32", "-analyzeduration", "0", "-threads", "1", "-listen", "1", "-i", url, "-an", "-vf", fmt.Sprintf("scale=%d:%d", w, h), "-fps_mode", "passthrough",
		"-pix_fmt", "gray", "-f", "rawvideo", "-flush_packets", "1", "-")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	frames := make(chan outFrame, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		r := bufio.NewReaderSize(stdout, w*h)
		buf := make([]byte, w*h)
		for {
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			sum := 0
			for _, b := range buf {
				sum += int(b)
			}
			select {
			case frames <- outFrame{at: time.Now(), bright: sum/len(buf) > 128}:
			default:
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		wg.Wait()
	})
	time.Sleep(300 * time.Millisecond) // listening
	return url, frames
}
