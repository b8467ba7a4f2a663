package synth

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stagehand-rt/stagehand/internal/validation"
)

// Codecs and defaults.
const (
	VP8  = "VP8"
	H264 = "H264"

	DefaultWidth        = 640
	DefaultHeight       = 360
	DefaultFPS          = 30
	DefaultColor        = "steelblue"
	DefaultToneHz       = 440
	DefaultVideoBitrate = 1_000_000

	// SampleRate, Channels and AudioFrame describe the Opus stream: 48 kHz
	// stereo in 20 ms packets, what WebRTC peers expect.
	SampleRate = 48_000
	Channels   = 2
	AudioFrame = 960

	maxLabelRunes = 64
)

// Config says what to generate. Zero fields take defaults (WithDefaults);
// New validates it.
type Config struct {
	Width, Height int // even, 16..1920 x 16..1080; default 640x360
	FPS           int // 1..60; default 30
	// Color is the background: a colour name FFmpeg knows ("red",
	// "steelblue", case-insensitive) or "#RRGGBB" / "0xRRGGBB"; default
	// "steelblue".
	Color string
	// Label is drawn big in the middle of the picture (a participant's
	// name, say); "" draws none. At most 64 characters, no control characters.
	Label string
	// ToneHz is the frequency of the sine tone, 1..20000 Hz; default 440.
	ToneHz float64
	// Silent sends silence instead of the tone (ToneHz is then ignored). It
	// is a separate switch because a zero ToneHz means "the default".
	Silent bool
	// SyncMarks turns the picture white for one frame and sounds the tone
	// for 100 ms at the start of every second (silence otherwise), so that
	// a receiver can measure audio/video offset.
	SyncMarks    bool
	VideoCodec   string // VP8 (default) or H264
	VideoBitrate int    // bits per second, 50,000..10,000,000; default 1,000,000
	// Logger receives falling behind and drawing without text, with
	// component=synth added; default slog.Default().
	Logger *slog.Logger
}

// ValidationError names the setting that is refused and why; Validate
// wraps each in "synth: ".
type ValidationError = validation.Error

// WithDefaults fills zero fields with the defaults.
func (c Config) WithDefaults() Config {
	if c.Width == 0 {
		c.Width = DefaultWidth
	}
	if c.Height == 0 {
		c.Height = DefaultHeight
	}
	if c.FPS == 0 {
		c.FPS = DefaultFPS
	}
	if c.Color == "" {
		c.Color = DefaultColor
	}
	if c.ToneHz == 0 {
		c.ToneHz = DefaultToneHz
	}
	if c.VideoCodec == "" {
		c.VideoCodec = VP8
	}
	if c.VideoBitrate == 0 {
		c.VideoBitrate = DefaultVideoBitrate
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the configuration after defaults, reporting every bad
// field, so that a bad flag fails before any encoder is opened.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("synth: %w", validation.Errorf(field, format, args...)))
	}
	side := func(field string, v, max int) {
		switch {
		case v < 16 || v > max:
			bad(field, "%d is outside 16..%d", v, max)
		case v%2 != 0:
			bad(field, "%d is odd; 4:2:0 video needs even sizes", v)
		}
	}
	side("Width", c.Width, 1920)
	side("Height", c.Height, 1080)
	if c.FPS < 1 || c.FPS > 60 {
		bad("FPS", "%d is outside 1..60", c.FPS)
	}
	if _, err := parseColor(c.Color); err != nil {
		bad("Color", "%v", err)
	}
	switch {
	case !utf8.ValidString(c.Label):
		bad("Label", "not valid UTF-8")
	case utf8.RuneCountInString(c.Label) > maxLabelRunes:
		bad("Label", "%d characters; at most %d", utf8.RuneCountInString(c.Label), maxLabelRunes)
	case strings.IndexFunc(c.Label, unicode.IsControl) >= 0:
		bad("Label", "contains a control character")
	}
	// Written as the valid range so that NaN fails too.
	if !c.Silent && !(c.ToneHz >= 1 && c.ToneHz <= 20_000) {
		bad("ToneHz", "%g is outside 1..20000 (set Silent for silence)", c.ToneHz)
	}
	if c.VideoCodec != VP8 && c.VideoCodec != H264 {
		bad("VideoCodec", "%q is not %s or %s", c.VideoCodec, VP8, H264)
	}
	if c.VideoBitrate < 50_000 || c.VideoBitrate > 10_000_000 {
		bad("VideoBitrate", "%d is outside 50000..10000000", c.VideoBitrate)
	}
	return errors.Join(errs...)
}

// SimulcastLayers returns the configurations of three simulcast layers of
// top, low to high: a quarter, half and full size (even, at least 16x16),
// with an eighth, a third and all of its video bitrate (at least 50 kbit/s).
func SimulcastLayers(top Config) []Config {
	top = top.WithDefaults()
	out := make([]Config, 0, 3)
	for _, d := range []struct{ size, rate int }{{4, 8}, {2, 3}, {1, 1}} {
		c := top
		c.Width = max(16, top.Width/d.size&^1)
		c.Height = max(16, top.Height/d.size&^1)
		c.VideoBitrate = max(50_000, top.VideoBitrate/d.rate)
		out = append(out, c)
	}
	return out
}
