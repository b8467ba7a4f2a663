package trackdecode

import (
	"io"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// replay is a Track that plays packets, then ends.
type replay []*rtp.Packet

func (r *replay) ReadRTP() (*rtp.Packet, interceptor.Attributes, error) {
	if len(*r) == 0 {
		return nil, nil, io.EOF
	}
	p := (*r)[0]
	*r = (*r)[1:]
	return p, nil, nil
}

// TestRunDecodesUntilTheTrackEnds: every frame of the track is decoded
// (the last one is held until a next would start it, and the track ended
// first); keyframes are asked for until one arrives, and only then.
func TestRunDecodesUntilTheTrackEnds(t *testing.T) {
	s := newVideoStream(t, MimeTypeVP8, 160, 96, 20, 10)
	packets := func(from, to int) (n int) {
		for _, f := range s.packets[from:to] {
			n += len(f)
		}
		return n
	}
	for _, c := range []struct {
		name                     string
		from                     int // first frame sent
		frames                   int // frames decoded
		minRequests, maxRequests int
	}{
		// Until the first keyframe is whole, the decoder waits for one.
		{"whole", 0, 19, 0, packets(0, 1)},
		// Joined at frame 3: every packet until keyframe 10 asks for one.
		{"joined late", 3, 9, packets(3, 10), packets(3, 11)},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := NewVideo(MimeTypeVP8)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			var pkts replay
			for _, f := range s.packets[c.from:] {
				pkts = append(pkts, f...)
			}
			frames, requests := 0, 0
			v.Run(&pkts, func(*astiav.Frame, uint32) { frames++ }, func() { requests++ })
			if frames != c.frames || requests < c.minRequests || requests > c.maxRequests {
				t.Errorf("%d frames, %d keyframe requests; want %d frames, %d..%d requests",
					frames, requests, c.frames, c.minRequests, c.maxRequests)
			}
		})
	}
	a, err := NewAudio(MimeTypeOpus)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	audio := replay(newAudioStream(t, 25).packets)
	frames := 0
	a.Run(&audio, func(*astiav.Frame, uint32) { frames++ })
	if frames != 25 {
		t.Errorf("audio: %d frames decoded, want 25", frames)
	}
}
