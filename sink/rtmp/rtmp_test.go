package rtmp

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/sink"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
)

func writerFor(t *testing.T, m *testmedia.Stream, cfg Config) *Writer {
	t.Helper()
	cfg.Video = Stream{Params: m.Video, TimeBase: m.VideoTimeBase}
	cfg.Audio = &Stream{Params: m.Audio, TimeBase: m.AudioTimeBase}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPublishesToNginx publishes 4 s over rtmp:// and rtmps:// to a real
// nginx-rtmp (behind stunnel for TLS) and checks what nginx recorded.
func TestPublishesToNginx(t *testing.T) {
	srv := testserver.StartRTMP(t)
	for _, tc := range []struct{ name, url string }{
		{"rtmp", srv.URL("plain")},
		{"rtmps", srv.TLSURL("secure")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testmedia.New(t, testmedia.Options{Seconds: 4})
			w := writerFor(t, m, Config{URL: tc.url, CAFile: srv.CAFile})
			ctx := context.Background()
			m.Run(t, func(p *astiav.Packet, stream int) {
				if err := w.Write(ctx, p, stream); err != nil {
					t.Fatal(err)
				}
			}, nil)
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			key := tc.url[strings.LastIndex(tc.url, "/")+1:]
			var files []string
			testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, func() error {
				if files = srv.Recordings(key); len(files) == 0 {
					return fmt.Errorf("nginx recorded nothing for %s", key)
				}
				return nil
			})
			if len(files) != 1 {
				t.Fatalf("nginx recorded %v for %s, want one file", files, key)
			}
			p := testmedia.FFprobe(t, "-show_entries", "format=duration:stream=codec_name,width,height,sample_rate,channels", files[0])
			if c := p.Codecs(); !slices.Equal(c, []string{"h264", "aac"}) && !slices.Equal(c, []string{"aac", "h264"}) {
				t.Errorf("recorded streams %v, want h264 and aac", c)
			}
			if d := p.Duration(t); math.Abs(d-4) > 0.3 {
				t.Errorf("recorded %.2f s, want 4", d)
			}
		})
	}
}

// TestRTMPSRefusesUnknownCertificate connects to the TLS port without the
// test CA: verification must fail rather than send the stream key to an
// unverified server.
func TestRTMPSRefusesUnknownCertificate(t *testing.T) {
	srv := testserver.StartRTMP(t)
	m := testmedia.New(t, testmedia.Options{Seconds: 0.1})
	w := writerFor(t, m, Config{URL: srv.TLSURL("secret-key"), IOTimeout: 2 * time.Second})
	defer w.Close(context.Background())
	var err error
	m.Run(t, func(p *astiav.Packet, stream int) {
		if err == nil {
			err = w.Write(context.Background(), p, stream)
		}
	}, nil)
	if err == nil {
		t.Fatal("published to a server whose certificate nothing vouches for")
	}
	if strings.Contains(err.Error(), "secret-key") {
		t.Errorf("error %q reveals the stream key", err)
	}
}

// TestReconnectsAfterServerRestart restarts nginx in the middle of a stream
// published through the fan-out beside an HLS recording: the channel goes
// RECONNECTING, comes back ACTIVE, nginx records a second stream, and the
// recording loses nothing.
func TestReconnectsAfterServerRestart(t *testing.T) {
	srv := testserver.StartRTMP(t)
	m := testmedia.New(t, testmedia.Options{Seconds: 8, Width: 160, Height: 90})
	w := writerFor(t, m, Config{URL: srv.URL("restart"), IOTimeout: 2 * time.Second})
	rec, err := ivsrec.New(ivsrec.Config{Dir: t.TempDir(), Rendition: "90p30", SegmentSeconds: 2, Framerate: 30,
		Video: ivsrec.Stream{Params: m.Video, TimeBase: m.VideoTimeBase}, Audio: &ivsrec.Stream{Params: m.Audio, TimeBase: m.AudioTimeBase}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := sink.Start(context.Background(),
		sink.Config{Name: "channel", Writer: w, Backoff: 100 * time.Millisecond, QueueSize: 4096},
		sink.Config{Name: "recording", Writer: rec, QueueSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	var states []sink.State
	total := 0
	m.Run(t, func(p *astiav.Packet, stream int) { f.Write(p, stream); total++ }, func(i int) {
		// Pace the stream like a live encoder, so the restart lands mid-stream.
		time.Sleep(time.Second / 60)
		if i == 90 {
			srv.Restart(300 * time.Millisecond)
		}
		if st := f.Status()[0].State; len(states) == 0 || states[len(states)-1] != st {
			states = append(states, st)
		}
	})
	if err := f.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v (states %v)", err, states)
	}
	st := f.Status()[0]
	if !slices.Contains(states, sink.StateReconnecting) || st.State != sink.StateStopped {
		t.Errorf("states seen %v, final %s: want RECONNECTING then back, STOPPED at the end", states, st.State)
	}
	if n := len(srv.Recordings("restart")); n < 2 {
		t.Errorf("nginx recorded %d streams, want one before and one after the restart", n)
	}
	if r := f.Status()[1]; r.State != sink.StateStopped || r.Packets != uint64(total) || r.Dropped != 0 || rec.Segments() != 4 {
		t.Errorf("recording %+v with %d segments: want all %d packets in 4 segments despite the channel's outage", r, rec.Segments(), total)
	}
}
