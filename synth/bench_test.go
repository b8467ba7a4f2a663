package synth

import (
	"testing"

	"github.com/pion/webrtc/v4/pkg/media"
)

type discard struct{}

func (discard) WriteSample(media.Sample) error { return nil }

// BenchmarkGenerate measures one video frame and its share of the audio:
// drawing, encoding and handing over. ns/op bounds how many participants a
// core can drive at 30 fps (33 ms per frame).
func BenchmarkGenerate(b *testing.B) {
	for _, codec := range []string{VP8, H264} {
		b.Run(codec, func(b *testing.B) {
			s, err := New(Config{Label: "bench", VideoCodec: codec})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			b.ResetTimer()
			if err := s.Generate(b.N, discard{}, discard{}); err != nil {
				b.Fatal(err)
			}
		})
	}
}
