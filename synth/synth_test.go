package synth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp8"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/stagehand-rt/stagehand/internal/avframe"
	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// collector is a SampleWriter that keeps every sample.
type collector struct {
	mu      sync.Mutex
	samples []media.Sample
	err     error // returned by every write when set
}

func (c *collector) WriteSample(s media.Sample) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples = append(c.samples, s)
	return c.err
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.samples)
}

func totalDuration(ss []media.Sample) time.Duration {
	var d time.Duration
	for _, s := range ss {
		d += s.Duration
	}
	return d
}

// isKeyframe reads the bitstream itself: the VP8 frame tag's inverted key
// bit, or an IDR slice in the H.264 access unit.
func isKeyframe(codec string, data []byte) bool {
	if codec == VP8 {
		return vp8.IsRandomAccess(data)
	}
	var au h264.AnnexB
	return au.Unmarshal(data) == nil && h264.IsRandomAccess(au)
}

// nalTypes lists the NAL unit types of an access unit.
func nalTypes(au h264.AnnexB) map[h264.NALUType]bool {
	types := map[h264.NALUType]bool{}
	for _, nalu := range au {
		types[h264.NALUType(nalu[0]&0x1f)] = true
	}
	return types
}

// checkH264 checks an access unit as WebRTC receivers need it: Annex-B,
// parameter sets before an IDR slice, and the SPS constrained baseline.
func checkH264(t *testing.T, i int, data []byte) {
	t.Helper()
	var au h264.AnnexB
	if err := au.Unmarshal(data); err != nil {
		t.Fatalf("sample %d is not Annex-B: %v", i, err)
	}
	types := nalTypes(au)
	if types[h264.NALUTypeIDR] && (!types[h264.NALUTypeSPS] || !types[h264.NALUTypePPS]) {
		t.Errorf("keyframe %d lacks SPS/PPS: NAL types %v", i, types)
	}
	for _, nalu := range au {
		if h264.NALUType(nalu[0]&0x1f) != h264.NALUTypeSPS {
			continue
		}
		// profile_idc 66 with constraint_set1: constrained baseline, which
		// every WebRTC H.264 decoder takes.
		var sps h264.SPS
		if err := sps.Unmarshal(nalu); err != nil {
			t.Errorf("SPS in sample %d: %v", i, err)
		} else if sps.ProfileIdc != 66 || !sps.ConstraintSet1Flag {
			t.Errorf("SPS in sample %d: profile_idc %d, constraint_set1 %v; want constrained baseline (66 with constraint_set1)", i, sps.ProfileIdc, sps.ConstraintSet1Flag)
		}
	}
}

// decodedVideo is what decoding the samples gave back.
type decodedVideo struct {
	frames  int
	w, h    int
	topLeft []RGB          // mean colour of the area above and left of any text, per frame
	centre  []uint8        // brightest luma in the middle band, per frame
	labelAt []RGB          // mean colour where the no-text picture draws the label bar
	luma    map[int][]byte // the luma plane (w*h) of the frames asked for
}

func decodeVideo(t *testing.T, codec string, samples []media.Sample, keep ...int) decodedVideo {
	t.Helper()
	id := astiav.CodecIDVp8
	if codec == H264 {
		id = astiav.CodecIDH264
	}
	dc := astiav.FindDecoder(id)
	cc := astiav.AllocCodecContext(dc)
	defer cc.Free()
	if err := cc.Open(dc, nil); err != nil {
		t.Fatal(err)
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	f := astiav.AllocFrame()
	defer f.Free()
	out := decodedVideo{luma: map[int][]byte{}}
	receive := func() {
		for {
			err := cc.ReceiveFrame(f)
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.PixelFormat() != astiav.PixelFormatYuv420P {
				t.Fatalf("decoded %s, want yuv420p", f.PixelFormat())
			}
			out.frames++
			out.w, out.h = f.Width(), f.Height()
			w, h := f.Width(), f.Height()
			out.topLeft = append(out.topLeft, meanRGB(f, w/16, h/16, w/4, h/4))
			out.labelAt = append(out.labelAt, meanRGB(f, w/4, h/2+h/32, w*3/4, h/2+h/16))
			y, ls := avframe.VideoPlane(f, 0)
			var brightest uint8
			for row := h * 2 / 5; row < h*3/5; row++ {
				for _, v := range y[row*ls+w/4 : row*ls+w*3/4] {
					brightest = max(brightest, v)
				}
			}
			out.centre = append(out.centre, brightest)
			if slices.Contains(keep, out.frames-1) {
				plane := make([]byte, 0, w*h)
				for row := 0; row < h; row++ {
					plane = append(plane, y[row*ls:row*ls+w]...)
				}
				out.luma[out.frames-1] = plane
			}
			f.Unref()
		}
	}
	for i, s := range samples {
		if err := pkt.FromData(s.Data); err != nil {
			t.Fatal(err)
		}
		if err := cc.SendPacket(pkt); err != nil {
			t.Fatalf("decode sample %d: %v", i, err)
		}
		pkt.Unref()
		receive()
	}
	if err := cc.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		t.Fatal(err)
	}
	receive()
	return out
}

// meanRGB averages the rectangle [x0,x1)x[y0,y1) of a yuv420p frame and
// converts it with BT.601 limited range, what FFmpeg's colour source and
// the decoders assume when nothing is signalled.
func meanRGB(f *astiav.Frame, x0, y0, x1, y1 int) RGB {
	var sy, su, sv, n float64
	yp, yls := avframe.VideoPlane(f, 0)
	up, uls := avframe.VideoPlane(f, 1)
	vp, vls := avframe.VideoPlane(f, 2)
	for row := y0; row < y1; row++ {
		for x := x0; x < x1; x++ {
			sy += float64(yp[row*yls+x])
			su += float64(up[row/2*uls+x/2])
			sv += float64(vp[row/2*vls+x/2])
			n++
		}
	}
	y, u, v := sy/n-16, su/n-128, sv/n-128
	clamp := func(c float64) uint8 { return uint8(math.Round(math.Max(0, math.Min(255, c)))) }
	return RGB{
		clamp(1.164*y + 1.596*v),
		clamp(1.164*y - 0.392*u - 0.813*v),
		clamp(1.164*y + 2.017*u),
	}
}

func near(a, b RGB, tol int) bool {
	d := func(x, y uint8) bool { return math.Abs(float64(x)-float64(y)) <= float64(tol) }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B)
}

// decodeOpus decodes the packets as a WebRTC receiver would (no extradata,
// stereo at 48 kHz) and returns the left channel.
func decodeOpus(t *testing.T, samples []media.Sample) []float32 {
	t.Helper()
	dc := astiav.FindDecoder(astiav.CodecIDOpus)
	cc := astiav.AllocCodecContext(dc)
	defer cc.Free()
	cc.SetSampleRate(SampleRate)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	if err := cc.Open(dc, nil); err != nil {
		t.Fatal(err)
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	f := astiav.AllocFrame()
	defer f.Free()
	var left []float32
	for i, s := range samples {
		if err := pkt.FromData(s.Data); err != nil {
			t.Fatal(err)
		}
		if err := cc.SendPacket(pkt); err != nil {
			t.Fatalf("decode opus packet %d: %v", i, err)
		}
		pkt.Unref()
		for cc.ReceiveFrame(f) == nil {
			if f.SampleRate() != SampleRate || f.ChannelLayout().NbChannels() != 2 || f.SampleFormat() != astiav.SampleFormatFltp {
				t.Fatalf("decoded %s at %d Hz, %d channels; want fltp 48000 Hz stereo", f.SampleFormat(), f.SampleRate(), f.ChannelLayout().NbChannels())
			}
			if f.NbSamples() != AudioFrame {
				t.Fatalf("packet %d decodes to %d samples, want %d (20 ms)", i, f.NbSamples(), AudioFrame)
			}
			b := avframe.AudioPlane(f, 0)
			for k := 0; k < f.NbSamples(); k++ {
				left = append(left, math.Float32frombits(uint32(b[4*k])|uint32(b[4*k+1])<<8|uint32(b[4*k+2])<<16|uint32(b[4*k+3])<<24))
			}
			f.Unref()
		}
	}
	return left
}

// toneHz measures a tone's frequency by its rising zero crossings.
func toneHz(pcm []float32) float64 {
	crossings := 0
	for i := 1; i < len(pcm); i++ {
		if pcm[i-1] < 0 && pcm[i] >= 0 {
			crossings++
		}
	}
	return float64(crossings) / (float64(len(pcm)) / SampleRate)
}

func rms(pcm []float32) float64 {
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(pcm)))
}

func TestMain(m *testing.M) {
	// libvpx and drawtext announce themselves at info level on every New.
	astiav.SetLogLevel(astiav.LogLevelError)
	os.Exit(m.Run())
}

func TestGenerate(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		rgb   RGB
		text  bool // false: force the no-font picture
		label bool
	}{
		{"VP8 defaults with a label", Config{Label: "Alice"}, RGB{70, 130, 180}, true, true},
		{"H264 320x240 hex colour, quoted label, 1 kHz", Config{Width: 320, Height: 240, FPS: 25, Color: "#FF8000", Label: "O'Brien: 50%, [live]", ToneHz: 1000, VideoCodec: H264}, RGB{255, 128, 0}, true, true},
		{"VP8 176x144 at 15 fps, 0x colour, no label, silent", Config{Width: 176, Height: 144, FPS: 15, Color: "0x00A000", Silent: true}, RGB{0, 160, 0}, true, false},
		{"H264 720p red", Config{Width: 1280, Height: 720, Color: "Red", Label: "Bob", ToneHz: 300, VideoCodec: H264, VideoBitrate: 2_000_000}, RGB{255, 0, 0}, true, true},
		{"VP8 without fonts", Config{Color: "purple", Label: "Carol"}, RGB{128, 0, 128}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newSource(tc.cfg, tc.text)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Text() != tc.text {
				t.Fatalf("Text() = %v, want %v (no usable font for drawtext?)", s.Text(), tc.text)
			}
			cfg := s.Config()
			n := 2*cfg.FPS + cfg.FPS/2 // 2.5 s: the second keyframe is in
			var video, audio collector
			if err := s.Generate(n, &video, &audio); err != nil {
				t.Fatal(err)
			}
			want := time.Duration(n) * time.Second / time.Duration(cfg.FPS)
			frame := time.Second / time.Duration(cfg.FPS)

			// Video: one sample per frame, keyframes on the two-second cadence.
			if len(video.samples) != n {
				t.Fatalf("%d video samples for %d frames", len(video.samples), n)
			}
			if d := totalDuration(video.samples); d < want-frame || d > want+frame {
				t.Errorf("video durations sum to %v, want %v", d, want)
			}
			var keys []int
			for i, vs := range video.samples {
				if isKeyframe(cfg.VideoCodec, vs.Data) {
					keys = append(keys, i)
				}
				if cfg.VideoCodec == H264 {
					checkH264(t, i, vs.Data)
				}
			}
			if want := []int{0, 2 * cfg.FPS}; !equal(keys, want) {
				t.Errorf("keyframes at samples %v, want %v", keys, want)
			}
			dv := decodeVideo(t, cfg.VideoCodec, video.samples, 1, 1+cfg.FPS)
			if dv.frames != n || dv.w != cfg.Width || dv.h != cfg.Height {
				t.Fatalf("decoded %d frames of %dx%d, want %d of %dx%d", dv.frames, dv.w, dv.h, n, cfg.Width, cfg.Height)
			}
			for _, i := range []int{0, n / 2, n - 1} {
				if !near(dv.topLeft[i], tc.rgb, 12) {
					t.Errorf("frame %d background %v, want %v ±12", i, dv.topLeft[i], tc.rgb)
				}
			}
			switch {
			case tc.text && tc.label:
				if dv.centre[n/2] < 200 {
					t.Errorf("no white label in the middle: brightest luma %d", dv.centre[n/2])
				}
			case tc.text:
				if bg := meanLuma(tc.rgb); math.Abs(float64(dv.centre[n/2])-bg) > 12 {
					t.Errorf("middle of an unlabelled picture has luma up to %d, background %.0f", dv.centre[n/2], bg)
				}
			default:
				if want := labelColor(tc.cfg.Label); !near(dv.labelAt[n/2], want, 16) {
					t.Errorf("label bar %v, want %v", dv.labelAt[n/2], want)
				}
			}
			// A second apart, the bottom quarter has changed (the clock, or
			// the sliding box) and the top quarter has not.
			a, b := dv.luma[1], dv.luma[1+cfg.FPS]
			top, bottom := meanAbsDiff(a[:len(a)/4], b[:len(b)/4]), meanAbsDiff(a[len(a)*3/4:], b[len(b)*3/4:])
			t.Logf("background %v; luma change over a second: top %.2f, bottom %.2f", dv.topLeft[n/2], top, bottom)
			if bottom < 0.3 || top > 0.2 {
				t.Errorf("mean luma change over a second: top quarter %.2f (want < 0.2), bottom quarter %.2f (want > 0.3): nothing moves", top, bottom)
			}

			// Audio: 20 ms Opus packets covering the video, carrying the tone.
			wantPackets := int((want + 20*time.Millisecond - 1) / (20 * time.Millisecond))
			if len(audio.samples) != wantPackets {
				t.Errorf("%d audio packets, want %d", len(audio.samples), wantPackets)
			}
			if d := totalDuration(audio.samples); d < want-frame || d > want+frame {
				t.Errorf("audio durations sum to %v, want %v", d, want)
			}
			pcm := decodeOpus(t, audio.samples)
			mid := pcm[SampleRate/2 : 2*SampleRate] // past the encoder's priming
			if cfg.Silent {
				if r := rms(mid); r > 1e-3 {
					t.Errorf("silence has RMS %g", r)
				}
				return
			}
			hz := toneHz(mid)
			t.Logf("tone %.1f Hz, RMS %.3f", hz, rms(mid))
			if math.Abs(hz-cfg.ToneHz) > cfg.ToneHz*0.02 {
				t.Errorf("decoded tone at %.1f Hz, want %g ±2%%", hz, cfg.ToneHz)
			}
			if r := rms(mid); r < 0.05 {
				t.Errorf("tone RMS %g: too quiet", r)
			}
		})
	}
}

func meanAbsDiff(a, b []byte) float64 {
	var s int
	for i := range a {
		d := int(a[i]) - int(b[i])
		s += max(d, -d)
	}
	return float64(s) / float64(len(a))
}

func meanLuma(c RGB) float64 {
	return 16 + 0.257*float64(c.R) + 0.504*float64(c.G) + 0.098*float64(c.B)
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		field string // "" when valid
	}{
		{"defaults", Config{}, ""},
		{"1080p60 H264", Config{Width: 1920, Height: 1080, FPS: 60, VideoCodec: H264}, ""},
		{"smallest", Config{Width: 16, Height: 16, FPS: 1}, ""},
		{"silent ignores tone", Config{Silent: true, ToneHz: -1}, ""},
		{"colour name any case", Config{Color: "SteelBlue"}, ""},
		{"odd width", Config{Width: 641}, "Width"},
		{"too narrow", Config{Width: 14}, "Width"},
		{"too tall", Config{Height: 1082}, "Height"},
		{"negative height", Config{Height: -360}, "Height"},
		{"fps 61", Config{FPS: 61}, "FPS"},
		{"negative fps", Config{FPS: -1}, "FPS"},
		{"unknown colour", Config{Color: "blurple"}, "Color"},
		{"short hex", Config{Color: "#FFF"}, "Color"},
		{"bad hex digit", Config{Color: "0x12345G"}, "Color"},
		{"colour with alpha", Config{Color: "red@0.5"}, "Color"},
		{"codec vp9", Config{VideoCodec: "VP9"}, "VideoCodec"},
		{"codec lower case", Config{VideoCodec: "h264"}, "VideoCodec"},
		{"negative tone", Config{ToneHz: -440}, "ToneHz"},
		{"ultrasonic tone", Config{ToneHz: 30_000}, "ToneHz"},
		{"NaN tone", Config{ToneHz: math.NaN()}, "ToneHz"},
		{"tiny bitrate", Config{VideoBitrate: 1000}, "VideoBitrate"},
		{"long label", Config{Label: strings.Repeat("x", 65)}, "Label"},
		{"label with newline", Config{Label: "a\nb"}, "Label"},
		{"label not UTF-8", Config{Label: "\xff"}, "Label"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("Validate: %v, want a ValidationError on %s", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("message %q does not name %s", err, tc.field)
			}
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("New accepted an invalid configuration")
			}
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("New: %v, want the ValidationError on %s", err, tc.field)
			}
		})
	}
	// Every bad field is reported at once.
	err := Config{Width: 7, FPS: 99, Color: "nope"}.Validate()
	for _, field := range []string{"Width", "FPS", "Color"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("%v does not name %s", err, field)
		}
	}
}

func TestRunPacing(t *testing.T) {
	checkGoroutines := testkit.CheckGoroutines(t)
	s, err := New(Config{Width: 320, Height: 180, FPS: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var video, audio collector
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Run(ctx, &video, &audio); err != nil {
		t.Fatalf("Run: %v, want nil on cancel", err)
	}
	took := time.Since(start)
	// Frames are due at 0, 33, ... 467 ms: 15 in half a second, 13 of 20 ms
	// audio packets per quarter second.
	if n := video.len(); n < 13 || n > 17 {
		t.Errorf("%d video samples in %v, want about 15", n, took)
	}
	if n := audio.len(); n < 22 || n > 27 {
		t.Errorf("%d audio packets in %v, want about 25", n, took)
	}
	if took > 700*time.Millisecond {
		t.Errorf("Run returned %v after start, %v after its context ended", took, took-500*time.Millisecond)
	}
	if !isKeyframe(VP8, video.samples[0].Data) {
		t.Error("Run's first sample is not a keyframe")
	}
	checkGoroutines()
}

// stallingWriter blocks once, on its third sample, like a stuck network
// write, and records when each write happened.
type stallingWriter struct {
	at []time.Time
}

func (w *stallingWriter) WriteSample(media.Sample) error {
	w.at = append(w.at, time.Now())
	if len(w.at) == 3 {
		time.Sleep(time.Second)
	}
	return nil
}

// TestRunAfterStall checks that Run does not burst the backlog of a stall
// (a second of frames at once) but restarts its clock.
func TestRunAfterStall(t *testing.T) {
	s, err := New(Config{Width: 160, Height: 90, FPS: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var w stallingWriter
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx, &w, nil); err != nil {
		t.Fatal(err)
	}
	resumed := w.at[2].Add(time.Second)
	burst := 0
	for _, at := range w.at[3:] {
		if at.Before(resumed.Add(100 * time.Millisecond)) {
			burst++
		}
	}
	t.Logf("%d samples in all, %d within 100 ms of the stall's end", len(w.at), burst)
	if burst > 5 {
		t.Errorf("%d samples within 100 ms after a 1 s stall: the backlog was burst out", burst)
	}
	if len(w.at) < 12 {
		t.Errorf("only %d samples: Run did not resume after the stall", len(w.at))
	}
}

func TestRunOneWriterAndErrors(t *testing.T) {
	s, err := New(Config{Width: 160, Height: 90, FPS: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Run(context.Background(), nil, nil); err == nil {
		t.Error("Run without writers succeeded")
	}
	var audio collector
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Run(ctx, nil, &audio); err != nil {
		t.Fatal(err)
	}
	// Paced in real time: one 20 ms packet at once, then one per 20 ms that
	// passed, never more (a loaded machine may get fewer out).
	if n, most := audio.len(), int(time.Since(start)/(20*time.Millisecond))+1; n < 1 || n > most {
		t.Errorf("audio-only Run wrote %d packets in %v, want 1..%d", n, time.Since(start), most)
	}
	boom := errors.New("boom")
	video := collector{err: boom}
	if err := s.Run(context.Background(), &video, nil); !errors.Is(err, boom) {
		t.Errorf("Run with a failing writer: %v, want it wrapped", err)
	}
	// Video-only generation continues the same encoder.
	var v collector
	if err := s.Generate(20, &v, nil); err != nil || len(v.samples) != 20 {
		t.Errorf("Generate(20) video only: %v, %d samples", err, len(v.samples))
	}
}

func TestCloseStopsRun(t *testing.T) {
	checkGoroutines := testkit.CheckGoroutines(t)
	s, err := New(Config{Width: 160, Height: 90})
	if err != nil {
		t.Fatal(err)
	}
	var video collector
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background(), &video, nil) }()
	for video.len() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	s.Close() // frees the encoders only after Run has returned
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run after Close: %v, want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return after Close")
	}
	s.Close()
	if err := s.Run(context.Background(), &video, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run on a closed source: %v, want ErrClosed", err)
	}
	if err := s.Generate(1, &video, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Generate on a closed source: %v, want ErrClosed", err)
	}
	checkGoroutines()
}

// rss reads the resident set size from /proc.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	var size, res int64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		t.Fatal(err)
	}
	return res * int64(os.Getpagesize())
}

// leakPerCycle is the RSS growth per cycle that counts as a leak. After
// warm-up the noise is within ±60 KiB per cycle; a leaked 320x180 encoder
// costs 580 KiB (libx264) to 2 MiB (libvpx), a leaked audio graph 150 KiB.
const leakPerCycle = 140 << 10

// TestNewCloseLeaksNothing opens and closes sources, with and without
// generating, and watches the process's memory.
func TestNewCloseLeaksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cycle := func(i int) {
		cfg := Config{Width: 320, Height: 180, VideoCodec: []string{VP8, H264}[i%2], Label: "leak"}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 != 0 {
			if err := s.Generate(5, &collector{}, &collector{}); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		s.Close()
	}
	for i := range 20 { // fontconfig's and malloc's caches settle
		cycle(i)
	}
	runtime.GC()
	before := rss(t)
	const cycles = 60
	for i := range cycles {
		cycle(i)
	}
	runtime.GC()
	growth := rss(t) - before
	t.Logf("RSS grew %d KiB over %d cycles", growth>>10, cycles)
	if growth > cycles*leakPerCycle {
		t.Errorf("RSS grew %d KiB over %d New/Close cycles: something is not freed", growth>>10, cycles)
	}

	// A New that fails half-way (here at the audio encoder, after the graphs
	// and the video encoder) frees what it had opened.
	openAudio = func() (*astiav.CodecContext, error) { return nil, errors.New("no opus today") }
	defer func() { openAudio = openOpus }()
	runtime.GC()
	before = rss(t)
	for range cycles {
		if _, err := New(Config{Width: 320, Height: 180}); err == nil || !strings.Contains(err.Error(), "no opus today") {
			t.Fatalf("New with a failing audio encoder: %v", err)
		}
	}
	runtime.GC()
	growth = rss(t) - before
	t.Logf("RSS grew %d KiB over %d failed News", growth>>10, cycles)
	if growth > cycles*leakPerCycle {
		t.Errorf("RSS grew %d KiB over %d failed News: a half-built source is not freed", growth>>10, cycles)
	}
}

// TestRequestKeyframe: a requested keyframe comes with the next frame, off
// the 2 s cadence.
func TestRequestKeyframe(t *testing.T) {
	for _, codec := range []string{VP8, H264} {
		t.Run(codec, func(t *testing.T) {
			s, err := New(Config{Width: 160, Height: 90, VideoCodec: codec, Silent: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := keyframeLog{codec: codec}
			if err := s.Generate(10, &got, nil); err != nil {
				t.Fatal(err)
			}
			s.RequestKeyframe()
			if err := s.Generate(5, &got, nil); err != nil {
				t.Fatal(err)
			}
			if want := []int{0, 10}; !slices.Equal(got.keyframes, want) {
				t.Errorf("keyframes at %v, want %v", got.keyframes, want)
			}
		})
	}
}

// keyframeLog records which samples are keyframes.
type keyframeLog struct {
	codec     string
	n         int
	keyframes []int
}

func (k *keyframeLog) WriteSample(s media.Sample) error {
	if isKeyframe(k.codec, s.Data) {
		k.keyframes = append(k.keyframes, k.n)
	}
	k.n++
	return nil
}

// TestSyncMarks: one white frame and 100 ms of tone at the start of every
// second, silence and the normal picture otherwise.
func TestSyncMarks(t *testing.T) {
	s, err := New(Config{Width: 160, Height: 90, FPS: 10, SyncMarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v, a collector
	if err := s.Generate(20, &v, &a); err != nil {
		t.Fatal(err)
	}
	dv := decodeVideo(t, VP8, v.samples)
	var white []int
	for i, c := range dv.topLeft {
		if meanLuma(c) > 200 {
			white = append(white, i)
		}
	}
	if !equal(white, []int{0, 10}) {
		t.Errorf("white frames %v, want [0 10]", white)
	}
	pcm := decodeOpus(t, a.samples)
	// Opus has a few ms of algorithmic delay; look at the middle of each
	// 100 ms window.
	for _, tc := range []struct {
		from, to float64
		loud     bool
	}{{0.02, 0.08, true}, {0.3, 0.9, false}, {1.02, 1.08, true}, {1.3, 1.9, false}} {
		level := rms(pcm[int(tc.from*SampleRate):int(tc.to*SampleRate)])
		if (level > 0.02) != tc.loud {
			t.Errorf("RMS %.3f over %.2f..%.2f s; want loud=%v", level, tc.from, tc.to, tc.loud)
		}
	}
}

func TestSimulcastLayers(t *testing.T) {
	got := SimulcastLayers(Config{Width: 1280, Height: 720, VideoBitrate: 2_400_000, Label: "x"})
	want := [][3]int{{320, 180, 300_000}, {640, 360, 800_000}, {1280, 720, 2_400_000}}
	for i, c := range got {
		if [3]int{c.Width, c.Height, c.VideoBitrate} != want[i] || c.Label != "x" || c.Validate() != nil {
			t.Errorf("layer %d: %dx%d at %d (%v), want %v", i, c.Width, c.Height, c.VideoBitrate, c.Validate(), want[i])
		}
	}
	// Even sizes and the encoders' floors.
	low := SimulcastLayers(Config{Width: 100, Height: 58, VideoBitrate: 100_000})[0]
	if low.Width != 24 || low.Height != 16 || low.VideoBitrate != 50_000 || low.Validate() != nil {
		t.Errorf("quarter of 100x58 at 100 kbit/s: %dx%d at %d (%v)", low.Width, low.Height, low.VideoBitrate, low.Validate())
	}
}
