package ingest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// aacFixture encodes secs seconds of a 440 Hz tone at rate Hz with
// channels channels to AAC with Debian's ffmpeg and returns the stream's
// AudioSpecificConfig and access units, as an FLV stream carries them.
func aacFixture(tb testing.TB, rate, channels, secs int) (asc []byte, aus [][]byte) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "tone.aac")
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=440:r="+itoa(rate)+":d="+itoa(secs),
		"-ac", itoa(channels), "-c:a", "aac", "-b:a", "128k", "-f", "adts", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(b); err != nil {
		tb.Fatal(err)
	}
	c := mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}
	if asc, err = c.Marshal(); err != nil {
		tb.Fatal(err)
	}
	for _, p := range pkts {
		aus = append(aus, p.AU)
	}
	return asc, aus
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestTranscoder: AAC at 44.1 kHz mono and 48 kHz stereo becomes 20 ms
// Opus packets, 960 samples apart, as many as the audio lasts; a corrupt
// access unit is an error and the next good one decodes.
func TestTranscoder(t *testing.T) {
	for _, tc := range []struct{ rate, channels int }{{44100, 1}, {48000, 2}, {32000, 2}} {
		asc, aus := aacFixture(t, tc.rate, tc.channels, 2)
		tr, err := newTranscoder(asc, 64000)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		var last uint32
		emit := func(opus []byte, ts uint32) error {
			if n > 0 && ts-last != opusSamples {
				t.Errorf("%d Hz: packet %d at %d, %d after the last; want 960", tc.rate, n, ts, ts-last)
			}
			if len(opus) == 0 {
				t.Errorf("empty Opus packet")
			}
			n, last = n+1, ts
			return nil
		}
		for i, au := range aus {
			if i == len(aus)/2 {
				if err := tr.push([]byte{0xff, 0xff, 0xff}, emit); err == nil {
					t.Errorf("%d Hz: a corrupt access unit decoded", tc.rate)
				}
			}
			if err := tr.push(au, emit); err != nil {
				t.Fatalf("%d Hz: access unit %d: %v", tc.rate, i, err)
			}
		}
		tr.close()
		// 2 s of audio is 100 packets; the codecs' delays keep a few back.
		if n < 95 || n > 101 {
			t.Errorf("%d Hz %d ch: %d Opus packets from 2 s, want about 100", tc.rate, tc.channels, n)
		}
	}
}

// BenchmarkAACToOpus is the CPU cost of one RTMP publisher's audio: 10 s
// of 44.1 kHz stereo AAC decoded, resampled and encoded to Opus.
func BenchmarkAACToOpus(b *testing.B) {
	asc, aus := aacFixture(b, 44100, 2, 10)
	tr, err := newTranscoder(asc, 96000)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.close()
	emit := func([]byte, uint32) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, au := range aus {
			if err := tr.push(au, emit); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/10, "ms/audio-s")
}
