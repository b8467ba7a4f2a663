package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/stagehand-rt/stagehand/internal/avframe"
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
//     track (RTP out over loopback, so RTP in at the worker) to the RTMP
//     message carrying the flash arriving at an RTMP server in this test;
//   - StartComposition → the first video message of the RTMP stream.
//
// Loopback and the RTMP server's reading are included; the receiver's
// decoding is not (messages are stamped as they arrive).
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
	t.Logf("StartComposition → first RTMP video message: %v (composition ACTIVE after %v)", first.Sub(started).Round(time.Millisecond),
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
	at     time.Time // when the RTMP message carrying it arrived
	bright bool
}

// startRTMPListener is an RTMP server (gortmplib) for one publisher: every
// H.264 access unit is stamped when its message arrives, before anything
// else is done with it, then decoded (FFmpeg's H.264 decoder) to tell the
// flashes. So the figures are RTP in → RTMP packet out, loopback included,
// with nothing of the receiver's own buffering or decoding.
func startRTMPListener(t *testing.T) (string, <-chan outFrame) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("rtmp://%s/live/latency", l.Addr())
	frames := make(chan outFrame, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if err := receiveRTMP(nc, frames); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			t.Logf("RTMP listener: %v", err)
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return url, frames
}

func receiveRTMP(nc net.Conn, frames chan<- outFrame) error {
	sc := &gortmplib.ServerConn{RW: nc}
	if err := sc.Initialize(); err != nil {
		return err
	}
	if err := sc.AcceptConn(); err != nil {
		return err
	}
	if err := sc.AcceptAction(); err != nil {
		return err
	}
	dec, err := newFlashDecoder()
	if err != nil {
		return err
	}
	defer dec.close()
	var params [][]byte // SPS and PPS
	for {
		msg, err := sc.Read()
		if err != nil {
			return err
		}
		at := time.Now()
		v, ok := msg.(*message.Video)
		if !ok || v.Codec != message.CodecH264 {
			continue
		}
		switch v.Type {
		case message.VideoTypeConfig:
			params = params[:0]
			for _, ps := range v.AVCConfig.SequenceParameterSets {
				params = append(params, ps.NALUnit)
			}
			for _, ps := range v.AVCConfig.PictureParameterSets {
				params = append(params, ps.NALUnit)
			}
		case message.VideoTypeAU:
			bright, decoded, err := dec.decode(params, v.AU)
			if err != nil {
				return err
			}
			if decoded {
				select {
				case frames <- outFrame{at: at, bright: bright}:
				default:
				}
			}
		}
	}
}

// flashDecoder decodes H.264 access units and tells a bright picture.
type flashDecoder struct {
	cc    *astiav.CodecContext
	pkt   *astiav.Packet
	frame *astiav.Frame
}

func newFlashDecoder() (*flashDecoder, error) {
	codec := astiav.FindDecoder(astiav.CodecIDH264)
	if codec == nil {
		return nil, errors.New("no H.264 decoder")
	}
	d := &flashDecoder{cc: astiav.AllocCodecContext(codec), pkt: astiav.AllocPacket(), frame: astiav.AllocFrame()}
	d.cc.SetFlags(d.cc.Flags().Add(astiav.CodecContextFlagLowDelay))
	if err := d.cc.Open(codec, nil); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// decode decodes one AVCC access unit (parameter sets first, in Annex B).
func (d *flashDecoder) decode(params [][]byte, au []byte) (bright, decoded bool, err error) {
	var avcc h264.AVCC
	if err := avcc.Unmarshal(au); err != nil {
		return false, false, nil // not one of ours: skip it
	}
	annexB, err := h264.AnnexB(append(slices.Clone(params), avcc...)).Marshal()
	if err != nil {
		return false, false, err
	}
	if err := d.pkt.FromData(annexB); err != nil {
		return false, false, err
	}
	defer d.pkt.Unref()
	if err := d.cc.SendPacket(d.pkt); err != nil {
		return false, false, nil // a broken unit: skip it
	}
	if err := d.cc.ReceiveFrame(d.frame); err != nil {
		return false, false, nil
	}
	defer d.frame.Unref()
	luma, stride := avframe.VideoPlane(d.frame, 0)
	sum, n := 0, 0
	for y := 0; y < d.frame.Height(); y += 8 {
		for x := 0; x < d.frame.Width(); x += 8 {
			sum += int(luma[y*stride+x])
			n++
		}
	}
	return n > 0 && sum/n > 128, true, nil
}

func (d *flashDecoder) close() {
	d.frame.Free()
	d.pkt.Free()
	d.cc.Free()
}
