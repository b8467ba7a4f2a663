package sink_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/compositor"
	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
)

// deadChannel is an RTMP destination whose server is gone for good.
type deadChannel struct{ writes int }

func (d *deadChannel) Write(context.Context, *astiav.Packet, int) error {
	d.writes++
	return errors.New("rtmps://127.0.0.1:1/app: connection reset by peer")
}
func (d *deadChannel) Close(context.Context) error { return nil }

// TestRecordingSurvivesFailedChannel encodes 4 s of real H.264 through the
// fan-out into a real HLS recorder and a channel that fails at once: the
// channel ends FAILED, the recording is complete.
func TestRecordingSurvivesFailedChannel(t *testing.T) {
	dir := t.TempDir()
	venc, err := encoder.NewVideo(encoder.VideoConfig{Width: 320, Height: 180, KeyframeInterval: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer venc.Close()
	vp := astiav.AllocCodecParameters()
	defer vp.Free()
	if err := venc.CodecParameters(vp); err != nil {
		t.Fatal(err)
	}
	rec, err := ivsrec.New(ivsrec.Config{Dir: dir, Rendition: "180p30-Composite", SegmentSeconds: 2, Framerate: 30,
		Video: ivsrec.Stream{Params: vp, TimeBase: venc.TimeBase()}})
	if err != nil {
		t.Fatal(err)
	}
	channel := &deadChannel{}
	f, err := sink.Start(context.Background(),
		sink.Config{Name: "channel", Writer: channel},
		sink.Config{Name: "s3", Writer: rec, QueueSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	frame, err := compositor.NewFrame(layout.Size{W: 320, H: 180}, compositor.Black)
	if err != nil {
		t.Fatal(err)
	}
	defer frame.Free()
	emit := func(p *astiav.Packet) error { f.Write(p, sink.StreamVideo); return nil }
	for i := 0; i < 120; i++ {
		compositor.FillRect(frame, layout.Rect{X: i * 2, Y: 40, W: 32, H: 32}, compositor.White)
		if err := venc.Encode(frame, emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := venc.Flush(emit); err != nil {
		t.Fatal(err)
	}
	err = f.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Close: %v, want the channel's failure", err)
	}
	st := f.Status()
	if st[0].State != sink.StateFailed || st[1].State != sink.StateStopped || st[1].Packets != 120 {
		t.Errorf("status %+v: want channel FAILED, recording STOPPED with all 120 packets", st)
	}
	if rec.Segments() != 2 {
		t.Errorf("%d segments, want 2", rec.Segments())
	}
	pl, err := os.ReadFile(filepath.Join(dir, "media", "hls", "180p30-Composite", "playlist.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pl), "0.ts") || !strings.Contains(string(pl), "1.ts") || !strings.HasSuffix(strings.TrimSpace(string(pl)), "#EXT-X-ENDLIST") {
		t.Errorf("playlist:\n%s\nwant 0.ts, 1.ts and EXT-X-ENDLIST", pl)
	}
}
