package compositor

import (
	"errors"
	"math"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/avframe"
)

func audioFrame(t *testing.T, format astiav.SampleFormat, layout astiav.ChannelLayout, rate, n int) *astiav.Frame {
	t.Helper()
	f := astiav.AllocFrame()
	t.Cleanup(f.Free)
	f.SetNbSamples(n)
	f.SetSampleFormat(format)
	f.SetSampleRate(rate)
	f.SetChannelLayout(layout)
	if err := f.AllocBuffer(0); err != nil {
		t.Fatal(err)
	}
	return f
}

func putF32(b []byte, v float32) {
	u := math.Float32bits(v)
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
}

func getF32(b []byte) float32 { return math.Float32frombits(le32(b)) }

// TestMixerSumsAndSoftClips mixes a stereo float source and a mono 16-bit
// source, both loud: the mix holds both, never leaves [-1, 1], and a source
// that runs dry contributes silence.
func TestMixerSumsAndSoftClips(t *testing.T) {
	m := NewMixer()
	m.SetParticipants([]string{"a", "b"})
	const n = 960
	a := audioFrame(t, astiav.SampleFormatFltp, astiav.ChannelLayoutStereo, 48000, n)
	for c := 0; c < 2; c++ {
		pl := avframe.AudioPlane(a, c)
		for i := 0; i < n; i++ {
			putF32(pl[4*i:], 0.7) // a constant: easy to reason about
		}
	}
	b := audioFrame(t, astiav.SampleFormatS16, astiav.ChannelLayoutMono, 48000, n/2)
	pb := avframe.AudioPlane(b, 0)
	for i := 0; i < n/2; i++ {
		v := int16(16384) // 0.5
		pb[2*i], pb[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	if err := m.Push("a", a); err != nil {
		t.Fatal(err)
	}
	if err := m.Push("b", b); err != nil {
		t.Fatal(err)
	}
	out := audioFrame(t, astiav.SampleFormatFltp, astiav.ChannelLayoutStereo, 48000, n)
	if err := m.Mix(out); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 2; c++ {
		pl := avframe.AudioPlane(out, c)
		both, onlyA := getF32(pl[0:]), getF32(pl[4*(n-1):])
		// 0.7 + 0.5 = 1.2 is soft-clipped below full scale; 0.7 alone passes.
		if both <= 0.9 || both >= 1 {
			t.Errorf("channel %d: both sources sum to %.3f, want soft-clipped into (0.9, 1)", c, both)
		}
		if math.Abs(float64(onlyA)-0.7) > 1e-6 {
			t.Errorf("channel %d: after b ran dry got %.3f, want a's 0.7 alone", c, onlyA)
		}
	}
	if err := m.Mix(out); err != nil {
		t.Fatal(err)
	}
	if v := getF32(avframe.AudioPlane(out, 0)[4*10:]); v != 0 {
		t.Errorf("with every source dry the mix is %v, want silence", v)
	}
	if err := m.Push("a", audioFrame(t, astiav.SampleFormatFltp, astiav.ChannelLayoutStereo, 44100, 10)); !errors.Is(err, ErrUnsupportedAudio) {
		t.Errorf("44.1 kHz audio: %v, want ErrUnsupportedAudio", err)
	}
	if err := m.Push("ghost", a); !errors.Is(err, ErrUnknownParticipant) {
		t.Errorf("audio of an unknown participant: %v", err)
	}
}
