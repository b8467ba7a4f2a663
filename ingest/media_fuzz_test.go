package ingest

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/abema/go-mp4"
	"github.com/asticode/go-astiav"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// FuzzMessages feeds what a publisher sends after its publish command —
// an RTMP chunk stream, read by gortmplib's message reader as the
// connection reads it — to the publisher's media handling. Whatever the
// bytes, nothing panics, reading ends with a read error or a refusal, and
// a bad frame is counted and skipped.
func FuzzMessages(f *testing.F) {
	// FFmpeg's complaints about the fuzzed AAC are expected; quiet them.
	astiav.SetLogLevel(astiav.LogLevelQuiet)
	f.Cleanup(func() { astiav.SetLogLevel(astiav.LogLevelError) })
	asc, aus := aacFixture(f, 48000, 2, 1)
	f.Add(chunkStream(f, asc, aus[:4]))
	f.Add(chunkStream(f, asc, aus[:1])[:90])
	f.Add(chunkStream(f, nil, nil))
	s := &Server{cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler), metrics: newMetrics()}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := &publisher{s: s, log: s.log, connected: time.Now(),
			publish: func(tracks ...*webrtcTrack) error {
				if len(tracks) == 0 || tracks[0].Kind().String() != "video" {
					t.Fatalf("published %d tracks, the first not video", len(tracks))
				}
				return nil
			}}
		defer p.free()
		r := message.NewReader(bytes.NewReader(b), bytecounter.NewReader(bytes.NewReader(nil)), func(uint32) error { return nil })
		for range 1000 {
			msg, err := r.Read()
			if err != nil {
				return
			}
			if err := p.onMessage(msg); err != nil {
				var ref *refusal
				if !errors.As(err, &ref) && !errors.Is(err, errUnpublished) {
					t.Fatalf("message %T ended the publish with %v, want a refusal", msg, err)
				}
				return
			}
		}
	})
}

// TestMessagesSeed: the fuzz test's valid seed publishes video and
// audio and forwards every frame; a corrupt AAC frame is counted and
// skipped.
func TestMessagesSeed(t *testing.T) {
	asc, aus := aacFixture(t, 48000, 2, 1)
	aus = append(aus[:3:3], []byte{0xff, 0x00, 0x13}, aus[3])
	published := 0
	p := &publisher{s: &Server{cfg: Config{}.withDefaults(), metrics: newMetrics()}, log: slog.New(slog.DiscardHandler),
		publish: func(tracks ...*webrtcTrack) error { published = len(tracks); return nil }}
	defer p.free()
	r := message.NewReader(bytes.NewReader(chunkStream(t, asc, aus)), bytecounter.NewReader(bytes.NewReader(nil)), nil)
	for {
		msg, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := p.onMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	if published != 2 || !p.started || p.videoSent != 2 || p.badFrames != 1 {
		t.Errorf("published %d tracks, started %v, %d video frames sent, %d bad frames; want 2, true, 2, 1",
			published, p.started, p.videoSent, p.badFrames)
	}
}

// chunkStream is what an encoder sends once publishing: the AVC sequence
// header, the AAC one when asc is set, an IDR access unit, the AAC access
// units, and a P access unit.
func chunkStream(tb testing.TB, asc []byte, aus [][]byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := message.NewWriter(&buf, bytecounter.NewWriter(&buf), false)
	write := func(m message.Message) {
		if err := w.Write(m); err != nil {
			tb.Fatal(err)
		}
	}
	avc := &mp4.AVCDecoderConfiguration{AnyTypeBox: mp4.AnyTypeBox{Type: mp4.BoxTypeAvcC()}, ConfigurationVersion: 1, Profile: testSPS[1], ProfileCompatibility: testSPS[2], Level: testSPS[3],
		LengthSizeMinusOne: 3, NumOfSequenceParameterSets: 1, NumOfPictureParameterSets: 1,
		SequenceParameterSets: []mp4.AVCParameterSet{{Length: uint16(len(testSPS)), NALUnit: testSPS}},
		PictureParameterSets:  []mp4.AVCParameterSet{{Length: uint16(len(testPPS)), NALUnit: testPPS}}}
	write(&message.Video{ChunkStreamID: 6, MessageStreamID: 1, Codec: message.CodecH264, IsKeyFrame: true,
		Type: message.VideoTypeConfig, AVCConfig: avc})
	if asc != nil {
		var c mpeg4audio.AudioSpecificConfig
		if err := c.Unmarshal(asc); err != nil {
			tb.Fatal(err)
		}
		write(&message.Audio{ChunkStreamID: 4, MessageStreamID: 1, Codec: message.CodecMPEG4Audio, Rate: message.AudioRate44100,
			Depth: message.AudioDepth16, IsStereo: true, AACType: message.AudioAACTypeConfig, AACConfig: &c})
	}
	write(&message.Video{ChunkStreamID: 6, MessageStreamID: 1, Codec: message.CodecH264, IsKeyFrame: true,
		Type: message.VideoTypeAU, AU: avcc(4, testIDR)})
	for i, au := range aus {
		write(&message.Audio{ChunkStreamID: 4, MessageStreamID: 1, DTS: time.Duration(i) * 21 * time.Millisecond,
			Codec: message.CodecMPEG4Audio, Rate: message.AudioRate44100, Depth: message.AudioDepth16, IsStereo: true,
			AACType: message.AudioAACTypeAU, AU: au})
	}
	write(&message.Video{ChunkStreamID: 6, MessageStreamID: 1, DTS: 33 * time.Millisecond, Codec: message.CodecH264,
		Type: message.VideoTypeAU, AU: avcc(4, testP)})
	return buf.Bytes()
}
