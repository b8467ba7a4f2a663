// Package encoder turns composed frames and mixed audio into H.264 and AAC
// packets with libx264 and FFmpeg's AAC encoder (through go-astiav), from the
// settings of an IVS encoder configuration.
//
// Video is encoded for live delivery: zerolatency tuning (no B-frames, so
// decode order is presentation order and timestamps are monotonic), a
// bitrate capped by a VBV buffer (maxrate = bitrate), and keyframes exactly
// every KeyframeInterval frames with scene-cut keyframes disabled, so that
// HLS segment boundaries always fall on a keyframe. Timestamps come from the
// frame count, never from a clock.
//
// The package does not own a clock or outputs: callers pass frames on their
// output clock and receive packets through a callback.
package encoder

import (
	"errors"
	"slices"

	"github.com/stagehand-rt/stagehand/internal/validation"
)

// IVS encoder-configuration limits and defaults.
const (
	DefaultWidth     = 1280
	DefaultHeight    = 720
	DefaultFramerate = 30
	DefaultBitrate   = 2_500_000
	MaxSide          = 1920
	MaxPixels        = 2_073_600 // 1920x1080 or 1080x1920
	MaxBitrate       = 8_500_000
	MaxFramerate     = 60

	DefaultPreset       = "veryfast"
	DefaultAudioBitrate = 160_000
	AudioSampleRate     = 48_000
	AudioChannels       = 2
)

// presets are libx264's presets, fastest first.
var presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast",
	"medium", "slow", "slower", "veryslow", "placebo"}

// VideoConfig is an IVS encoder configuration's video settings plus what the
// pipeline decides (preset, keyframe cadence). Zero fields take defaults.
type VideoConfig struct {
	Width     int // even, 2..1920; width*height <= 2,073,600; default 1280
	Height    int // even, 2..1920; default 720
	Framerate int // frames per second, 1..60; default 30
	Bitrate   int // bits per second, 1..8,500,000; default 2,500,000
	Preset    string
	// KeyframeInterval is the distance between keyframes in frames; the
	// composition sets it so that every HLS segment starts on one. Default:
	// two seconds of frames.
	KeyframeInterval int
}

// AudioConfig is the composite's audio: AAC-LC, 48 kHz, stereo.
type AudioConfig struct {
	Bitrate int // bits per second; default 160,000
}

// ValidationError names the setting an encoder refuses and why.
type ValidationError = validation.Error

// WithDefaults fills zero fields with IVS's defaults.
func (c VideoConfig) WithDefaults() VideoConfig {
	if c.Width == 0 {
		c.Width = DefaultWidth
	}
	if c.Height == 0 {
		c.Height = DefaultHeight
	}
	if c.Framerate == 0 {
		c.Framerate = DefaultFramerate
	}
	if c.Bitrate == 0 {
		c.Bitrate = DefaultBitrate
	}
	if c.Preset == "" {
		c.Preset = DefaultPreset
	}
	if c.KeyframeInterval == 0 {
		c.KeyframeInterval = 2 * c.Framerate
	}
	return c
}

// Validate checks the settings (after defaults) against IVS's limits and
// what libx264 accepts, so that a bad configuration fails before a run.
func (c VideoConfig) Validate() error {
	c = c.WithDefaults()
	var errs []error
	side := func(field string, v int) {
		switch {
		case v < 2 || v > MaxSide:
			errs = append(errs, validation.Errorf(field, "%d is outside 2..%d", v, MaxSide))
		case v%2 != 0:
			errs = append(errs, validation.Errorf(field, "%d is odd; H.264 4:2:0 needs even sizes", v))
		}
	}
	side("video.width", c.Width)
	side("video.height", c.Height)
	if c.Width*c.Height > MaxPixels {
		errs = append(errs, validation.Errorf("video", "%dx%d is %d pixels; at most %d (1920x1080 or 1080x1920)",
			c.Width, c.Height, c.Width*c.Height, MaxPixels))
	}
	if c.Framerate < 1 || c.Framerate > MaxFramerate {
		errs = append(errs, validation.Errorf("video.framerate", "%d is outside 1..%d", c.Framerate, MaxFramerate))
	}
	if c.Bitrate < 1 || c.Bitrate > MaxBitrate {
		errs = append(errs, validation.Errorf("video.bitrate", "%d is outside 1..%d", c.Bitrate, MaxBitrate))
	}
	if !slices.Contains(presets, c.Preset) {
		errs = append(errs, validation.Errorf("preset", "unknown libx264 preset %q; valid presets are %v", c.Preset, presets))
	}
	if c.KeyframeInterval < 1 {
		errs = append(errs, validation.Errorf("keyframeInterval", "%d frames; must be at least 1", c.KeyframeInterval))
	}
	return errors.Join(errs...)
}

// Validate checks the audio settings.
func (c AudioConfig) Validate() error {
	if b := c.withDefaults().Bitrate; b < 16_000 || b > 512_000 {
		return validation.Errorf("audio.bitrate", "%d is outside 16000..512000", b)
	}
	return nil
}

func (c AudioConfig) withDefaults() AudioConfig {
	if c.Bitrate == 0 {
		c.Bitrate = DefaultAudioBitrate
	}
	return c
}
