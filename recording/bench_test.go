package recording

import (
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/internal/avframe"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
)

// moving fills f with a picture that changes every frame.
func moving(f *astiav.Frame, i int) {
	for p := range 3 {
		plane, stride := avframe.VideoPlane(f, p)
		for k := range plane {
			plane[k] = byte(k%stride + i*3 + p*50)
		}
	}
}

// BenchmarkTranscode720p encodes 1280x720 pictures to H.264 as a VP8
// participant's recording does (one op = one second of 30 fps video; the
// VP8 decode is trackdecode's BenchmarkVideoPush).
func BenchmarkTranscode720p(b *testing.B) {
	v, err := encoder.NewVideo(encoder.VideoConfig{Width: 1280, Height: 720, Framerate: fps, Bitrate: bitrate(1280, 720), KeyframeInterval: 2 * fps})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	f := astiav.AllocFrame()
	defer f.Free()
	f.SetWidth(1280)
	f.SetHeight(720)
	f.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := f.AllocBuffer(0); err != nil {
		b.Fatal(err)
	}
	drop := func(*astiav.Packet) error { return nil }
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range fps {
			moving(f, i*fps+k)
			if err := v.Encode(f, drop); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRemux720p writes one second of 1280x720 30 fps H.264 (2.5 Mbps)
// into the recording, as an H.264 participant's is: fMP4 fragments,
// segment files, playlists.
func BenchmarkRemux720p(b *testing.B) {
	v, err := encoder.NewVideo(encoder.VideoConfig{Width: 1280, Height: 720, Framerate: fps, Bitrate: bitrate(1280, 720), KeyframeInterval: 2 * fps})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	f := astiav.AllocFrame()
	defer f.Free()
	f.SetWidth(1280)
	f.SetHeight(720)
	f.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := f.AllocBuffer(0); err != nil {
		b.Fatal(err)
	}
	var pkts []*astiav.Packet
	keep := func(p *astiav.Packet) error {
		c := astiav.AllocPacket()
		if err := c.Ref(p); err != nil {
			return err
		}
		pkts = append(pkts, c)
		return nil
	}
	for k := range 2 * fps {
		moving(f, k)
		if err := v.Encode(f, keep); err != nil {
			b.Fatal(err)
		}
	}
	if err := v.Flush(keep); err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, p := range pkts {
			p.Free()
		}
	}()
	par := astiav.AllocCodecParameters()
	defer par.Free()
	if err := v.CodecParameters(par); err != nil {
		b.Fatal(err)
	}
	w, err := ivsrec.NewParticipant(ivsrec.ParticipantConfig{Dir: b.TempDir(), SegmentSeconds: 2, HLS: true, Start: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.BeginRun(ivsrec.RunConfig{Streams: []sink.Stream{{Params: par, TimeBase: v.TimeBase()}}, Video: true, FPS: fps, Start: time.Now()}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range fps {
			p := pkts[(i*fps+k)%len(pkts)]
			base := p.Pts()
			p.SetPts(int64(i*fps + k))
			p.SetDts(int64(i*fps + k))
			if err := w.Write(p, 0, v.TimeBase(), p.Flags().Has(astiav.PacketFlagKey)); err != nil {
				b.Fatal(err)
			}
			p.SetPts(base)
			p.SetDts(base)
		}
	}
	b.StopTimer()
	if err := w.Close(nil); err != nil {
		b.Fatal(err)
	}
}
