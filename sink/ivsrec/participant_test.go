package ivsrec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
)

// encodeRun writes seconds of a grey picture and silence as one run.
func encodeRun(t *testing.T, w *Participant, seconds int) {
	t.Helper()
	venc, err := encoder.NewVideo(encoder.VideoConfig{Width: 320, Height: 180, Framerate: 30, Bitrate: 300_000, KeyframeInterval: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer venc.Close()
	aenc, err := encoder.NewAudio(encoder.AudioConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer aenc.Close()
	vp, ap := astiav.AllocCodecParameters(), astiav.AllocCodecParameters()
	defer vp.Free()
	defer ap.Free()
	if err := venc.CodecParameters(vp); err != nil {
		t.Fatal(err)
	}
	if err := aenc.CodecParameters(ap); err != nil {
		t.Fatal(err)
	}
	if err := w.BeginRun(RunConfig{Streams: []Stream{{Params: vp, TimeBase: venc.TimeBase()}, {Params: ap, TimeBase: aenc.TimeBase()}},
		Video: true, FPS: 30, Start: time.Now(), Codecs: AVCCodec(vp.ExtraData()) + "," + AACCodec, Width: 320, Height: 180, Bandwidth: 500_000}); err != nil {
		t.Fatal(err)
	}
	f := astiav.AllocFrame()
	defer f.Free()
	f.SetWidth(320)
	f.SetHeight(180)
	f.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := f.AllocBuffer(0); err != nil {
		t.Fatal(err)
	}
	af, err := aenc.NewFrame()
	if err != nil {
		t.Fatal(err)
	}
	defer af.Free()
	emitV := func(p *astiav.Packet) error {
		return w.Write(p, 0, venc.TimeBase(), p.Flags().Has(astiav.PacketFlagKey))
	}
	emitA := func(p *astiav.Packet) error { return w.Write(p, 1, aenc.TimeBase(), false) }
	mixed := 0
	for k := 0; k < seconds*30; k++ {
		if err := venc.Encode(f, emitV); err != nil {
			t.Fatal(err)
		}
		for target := (k + 1) * 48000 / 30; mixed+aenc.FrameSize() <= target; mixed += aenc.FrameSize() {
			if err := aenc.Encode(af, emitA); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := venc.Flush(emitV); err != nil {
		t.Fatal(err)
	}
	if err := aenc.Flush(emitA); err != nil {
		t.Fatal(err)
	}
	if err := w.EndRun(); err != nil {
		t.Fatal(err)
	}
}

func TestParticipantRuns(t *testing.T) {
	dir := t.TempDir()
	var files []string
	w, err := NewParticipant(ParticipantConfig{Dir: dir, SegmentSeconds: 2, HLS: true, StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/abc",
		SessionID: "st-1234567890123", ParticipantID: "p1", Start: time.Now(), OnFile: func(rel string) { files = append(files, rel) }})
	if err != nil {
		t.Fatal(err)
	}
	encodeRun(t, w, 5)
	encodeRun(t, w, 3)
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	pl, err := os.ReadFile(filepath.Join(dir, "media/hls/high/playlist.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("playlist:\n%s\nfiles %v", pl, files)
	for _, want := range []string{`#EXT-X-MAP:URI="init-0.mp4"`, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"", "#EXT-X-ENDLIST", "#EXT-X-PROGRAM-DATE-TIME:"} {
		if !strings.Contains(string(pl), want) {
			t.Errorf("playlist lacks %q", want)
		}
	}
	p := testmedia.FFprobe(t, "-show_format", "-show_streams", filepath.Join(dir, "media/hls/multivariant.m3u8"))
	t.Logf("probe: %+v", p)
	if d := p.Duration(t); d < 7.5 || d > 8.5 {
		t.Errorf("duration %.2f s, want 8", d)
	}
}
