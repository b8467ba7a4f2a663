package encoder

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/internal/avframe"
	"github.com/stagehand-rt/stagehand/layout"
)

func TestVideoConfigValidation(t *testing.T) {
	cases := []struct {
		name  string
		cfg   VideoConfig
		field string // "" when valid
	}{
		{"defaults", VideoConfig{}, ""},
		{"1080p60 at the bitrate cap", VideoConfig{Width: 1920, Height: 1080, Framerate: 60, Bitrate: 8_500_000}, ""},
		{"portrait 1080x1920", VideoConfig{Width: 1080, Height: 1920}, ""},
		{"odd width", VideoConfig{Width: 1279}, "video.width"},
		{"too wide", VideoConfig{Width: 1922, Height: 720}, "video.width"},
		{"negative height", VideoConfig{Height: -2}, "video.height"},
		{"too many pixels", VideoConfig{Width: 1920, Height: 1200}, "video"},
		{"framerate 61", VideoConfig{Framerate: 61}, "video.framerate"},
		{"negative framerate", VideoConfig{Framerate: -1}, "video.framerate"},
		{"bitrate above 8.5 Mbps", VideoConfig{Bitrate: 8_500_001}, "video.bitrate"},
		{"unknown preset", VideoConfig{Preset: "turbo"}, "preset"},
		{"negative keyframe interval", VideoConfig{KeyframeInterval: -30}, "keyframeInterval"},
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
			if _, err := NewVideo(tc.cfg); err == nil {
				t.Fatal("NewVideo accepted an invalid configuration")
			}
		})
	}
	if err := (AudioConfig{Bitrate: 8000}).Validate(); err == nil {
		t.Error("audio bitrate 8000 accepted")
	}
}

// testFrame draws frame i of a moving test pattern: noise (so the encoder has
// bits to spend) under a box that moves 8 px per frame.
func testFrame(t testing.TB, f *astiav.Frame, i int, rng *rand.Rand) {
	t.Helper()
	y, ls := avframe.VideoPlane(f, 0)
	for row := 0; row < f.Height(); row++ {
		line := y[row*ls : row*ls+f.Width()]
		for x := range line {
			line[x] = uint8(40 + rng.IntN(160))
		}
	}
	box := layout.Rect{X: (i * 8) % (f.Width() - 64) &^ 1, Y: f.Height() / 2 &^ 1, W: 64, H: 64}
	compositor.FillRect(f, box, compositor.White)
}

type encodedVideo struct {
	sizes     []int
	pts, dts  []int64
	keyframes []int // indexes of packets flagged key
}

func encodeVideo(t *testing.T, cfg VideoConfig, frames int) (encodedVideo, *astiav.CodecParameters) {
	t.Helper()
	v, err := NewVideo(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	cfg = v.Config()
	f, err := compositor.NewFrame(layout.Size{W: cfg.Width, H: cfg.Height}, compositor.Black)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Free()
	var out encodedVideo
	emit := func(p *astiav.Packet) error {
		if p.Flags().Has(astiav.PacketFlagKey) {
			out.keyframes = append(out.keyframes, len(out.sizes))
		}
		out.sizes = append(out.sizes, p.Size())
		out.pts = append(out.pts, p.Pts())
		out.dts = append(out.dts, p.Dts())
		return nil
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < frames; i++ {
		testFrame(t, f, i, rng)
		if err := v.Encode(f, emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Flush(emit); err != nil {
		t.Fatal(err)
	}
	cp := astiav.AllocCodecParameters()
	t.Cleanup(cp.Free)
	if err := v.CodecParameters(cp); err != nil {
		t.Fatal(err)
	}
	return out, cp
}

func TestVideoKeyframesTimestampsAndBitrate(t *testing.T) {
	cfg := VideoConfig{Width: 640, Height: 360, Framerate: 30, Bitrate: 1_000_000, KeyframeInterval: 60}
	const frames = 240 // 8 s
	out, cp := encodeVideo(t, cfg, frames)
	if len(out.sizes) != frames {
		t.Fatalf("%d packets for %d frames", len(out.sizes), frames)
	}
	if want := []int{0, 60, 120, 180}; !equal(out.keyframes, want) {
		t.Errorf("keyframes at packets %v, want exactly %v", out.keyframes, want)
	}
	for i := range out.pts {
		if out.pts[i] != int64(i) || out.dts[i] != int64(i) {
			t.Fatalf("packet %d: pts %d dts %d, want both %d (no reordering, frame-count clock)", i, out.pts[i], out.dts[i], i)
		}
	}
	total := 0
	for _, s := range out.sizes {
		total += s
	}
	bitrate := float64(total*8) / (float64(frames) / 30)
	t.Logf("bitrate %.0f bps over %d frames", bitrate, frames)
	if math.Abs(bitrate-1e6)/1e6 > 0.15 {
		t.Errorf("bitrate %.0f bps, want 1,000,000 ±15%%", bitrate)
	}
	// No second of the stream exceeds the cap by more than the VBV buffer allows.
	for s := 0; s+30 <= frames; s += 30 {
		sum := 0
		for _, size := range out.sizes[s : s+30] {
			sum += size
		}
		if float64(sum*8) > 2*1e6 {
			t.Errorf("second starting at frame %d carries %d bits, more than maxrate plus the 1 s buffer", s, sum*8)
		}
	}
	if cp.CodecID() != astiav.CodecIDH264 || cp.Width() != 640 || cp.Height() != 360 || len(cp.ExtraData()) == 0 {
		t.Errorf("codec parameters: %s %dx%d, %d bytes of extradata; want h264 640x360 with SPS/PPS", cp.CodecID(), cp.Width(), cp.Height(), len(cp.ExtraData()))
	}
}

// TestVideoNoSceneCutKeyframes cuts between two very different pictures in
// the middle of a GOP: a scene-cut keyframe there would break segment alignment.
func TestVideoNoSceneCutKeyframes(t *testing.T) {
	v, err := NewVideo(VideoConfig{Width: 320, Height: 180, KeyframeInterval: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	colors := []compositor.Color{{R: 250, G: 10, B: 10}, {R: 10, G: 10, B: 250}}
	var keys []int
	n := 0
	emit := func(p *astiav.Packet) error {
		if p.Flags().Has(astiav.PacketFlagKey) {
			keys = append(keys, n)
		}
		n++
		return nil
	}
	for i := 0; i < 100; i++ {
		f, err := compositor.NewFrame(layout.Size{W: 320, H: 180}, colors[(i/10)%2])
		if err != nil {
			t.Fatal(err)
		}
		err = v.Encode(f, emit)
		f.Free()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Flush(emit); err != nil {
		t.Fatal(err)
	}
	if !equal(keys, []int{0, 50}) {
		t.Errorf("keyframes at %v, want only [0 50] despite a cut every 10 frames", keys)
	}
}

func TestVideoRejectsWrongFrameSize(t *testing.T) {
	v, err := NewVideo(VideoConfig{Width: 320, Height: 180})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	f, err := compositor.NewFrame(layout.Size{W: 640, H: 360}, compositor.Black)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Free()
	if err := v.Encode(f, func(*astiav.Packet) error { return nil }); err == nil {
		t.Fatal("a 640x360 frame was accepted by a 320x180 encoder")
	}
}

// TestAudioRoundTrip encodes two seconds of a 440 Hz tone to AAC, decodes it
// with FFmpeg's AAC decoder and measures the tone's frequency.
func TestAudioRoundTrip(t *testing.T) {
	a, err := NewAudio(AudioConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dec := astiav.AllocCodecContext(astiav.FindDecoder(astiav.CodecIDAac))
	defer dec.Free()
	cp := astiav.AllocCodecParameters()
	defer cp.Free()
	if err := a.CodecParameters(cp); err != nil {
		t.Fatal(err)
	}
	if err := cp.ToCodecContext(dec); err != nil {
		t.Fatal(err)
	}
	if err := dec.Open(astiav.FindDecoder(astiav.CodecIDAac), nil); err != nil {
		t.Fatal(err)
	}
	var left []float32
	decoded := astiav.AllocFrame()
	defer decoded.Free()
	packets := 0
	emit := func(p *astiav.Packet) error {
		packets++
		if err := dec.SendPacket(p); err != nil {
			return err
		}
		for dec.ReceiveFrame(decoded) == nil {
			if decoded.SampleRate() != 48000 || decoded.ChannelLayout().NbChannels() != 2 {
				t.Fatalf("decoded %d Hz, %d channels; want 48000 Hz stereo", decoded.SampleRate(), decoded.ChannelLayout().NbChannels())
			}
			// Planar float: the first plane is the left channel.
			b := avframe.AudioPlane(decoded, 0)
			n := decoded.NbSamples()
			for i := 0; i < n; i++ {
				left = append(left, math.Float32frombits(uint32(b[4*i])|uint32(b[4*i+1])<<8|uint32(b[4*i+2])<<16|uint32(b[4*i+3])<<24))
			}
			decoded.Unref()
		}
		return nil
	}
	frame := astiav.AllocFrame()
	defer frame.Free()
	frame.SetNbSamples(a.FrameSize())
	frame.SetSampleFormat(astiav.SampleFormatFltp)
	frame.SetSampleRate(48000)
	frame.SetChannelLayout(astiav.ChannelLayoutStereo)
	if err := frame.AllocBuffer(0); err != nil {
		t.Fatal(err)
	}
	const seconds = 2
	for s := 0; s < seconds*48000; s += a.FrameSize() {
		for ch := 0; ch < 2; ch++ {
			tone := avframe.AudioPlane(frame, ch)
			for i := 0; i < a.FrameSize(); i++ {
				v := math.Float32bits(float32(0.5 * math.Sin(2*math.Pi*440*float64(s+i)/48000)))
				tone[4*i], tone[4*i+1], tone[4*i+2], tone[4*i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
			}
		}
		if err := a.Encode(frame, emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(emit); err != nil {
		t.Fatal(err)
	}
	if want := seconds * 48000 / a.FrameSize(); packets < want {
		t.Errorf("%d packets, want at least %d", packets, want)
	}
	// Count rising zero crossings in the middle second (away from priming).
	crossings := 0
	mid := left[24000:72000]
	for i := 1; i < len(mid); i++ {
		if mid[i-1] < 0 && mid[i] >= 0 {
			crossings++
		}
	}
	if crossings < 435 || crossings > 445 {
		t.Errorf("decoded tone has %d cycles per second, want 440 ±5", crossings)
	}
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
