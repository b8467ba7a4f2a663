package ingest_test

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/stagehand-rt/stagehand/ingest"
	"github.com/stagehand-rt/stagehand/internal/promtest"
	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// TestRefusals: what the ingest refuses, and how it shows. A refusal
// before the participant joins leaves no participant and no session; one
// on bad media (after the join) is recorded as the IVS error event
// between JOINED and LEFT. Every refusal is logged with its reason, and
// the configuration is INACTIVE afterwards.
func TestRefusals(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	logs := &testkit.SyncBuffer{}
	srv := startIngest(t, env, logs)
	rtmps := func(key string) string { return fmt.Sprintf("rtmps://%s/app/%s", srv.RTMPSAddr(), key) }
	rtmp := func(key string) string { return fmt.Sprintf("rtmp://%s/app/%s", srv.RTMPAddr(), key) }
	for _, tc := range []struct {
		name     string
		proto    types.IngestProtocol
		detached bool                    // the configuration has no stage
		url      func(key string) string // where ffmpeg publishes
		codecs   []string                // ffmpeg's codec options; default H.264 + AAC
		log      string                  // in the refusal's log line
		event    string                  // the error event; "" for none (no participant)
	}{
		{name: "wrong secret", url: func(k string) string { return rtmps(k[:strings.LastIndexByte(k, '_')+1] + "wrong") }, log: "unknown stream key"},
		{name: "not a stream key", url: func(string) string { return rtmps("live") }, log: "unknown stream key"},
		{name: "no stage", detached: true, url: rtmps, log: "attached to no stage"},
		{name: "plain RTMP on an RTMPS configuration", url: rtmp, log: "plain RTMP refused"},
		{name: "Sorenson video", url: rtmps, codecs: []string{"-c:v", "flv1", "-c:a", "aac"}, log: "unsupported video codec", event: "PUBLISH_ERROR:INVALID_VIDEO_CODEC"},
		{name: "PCM audio", url: rtmps, codecs: []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le"}, log: "send AAC", event: "PUBLISH_ERROR:INVALID_AUDIO_CODEC"},
		{name: "B-frames", url: rtmps, codecs: []string{"-c:v", "libx264", "-profile:v", "main", "-preset", "ultrafast", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac"}, log: "B-frames", event: "PUBLISH_ERROR:B_FRAME_PRESENT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := env.CreateStage(t, "refusals")
			stageARN := *st.Arn
			if tc.detached {
				stageARN = ""
			}
			ic := createIngest(t, env, stageARN, types.IngestProtocolRtmps, false, "enc", nil)
			before := len(logs.String())
			ff := startFFmpeg(t, tc.url(*ic.StreamKey), append(publishArgs("blue", 4, tc.codecs...), "-tls_verify", "0")...)
			if err := ff.wait(t, 20*time.Second); err == nil {
				t.Errorf("ffmpeg succeeded; want it refused")
			}
			testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, withLogs(testkit.Until("refusal log line", func() bool {
				return strings.Contains(logs.String()[before:], "ingest refused")
			}), logs))
			line := refusalLine(logs.String()[before:])
			if !strings.Contains(line, tc.log) {
				t.Errorf("refusal logged as %q; want it to say %q", line, tc.log)
			}
			if strings.Contains(line, (*ic.StreamKey)[strings.LastIndexByte(*ic.StreamKey, '_')+1:]) {
				t.Errorf("the stream key's secret is logged: %q", line)
			}
			if s := ingestState(t, env, ic.Arn); s != types.IngestConfigurationStateInactive {
				t.Errorf("state after the refusal = %s, want INACTIVE", s)
			}
			got := events(t, env, *st.Arn, *ic.ParticipantId)
			if tc.event == "" {
				if len(got) != 0 {
					t.Errorf("events = %v; want none (no participant)", got)
				}
				return
			}
			testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, testkit.Until("LEFT", func() bool {
				got = events(t, env, *st.Arn, *ic.ParticipantId)
				return len(got) > 0 && got[len(got)-1] == "LEFT"
			}))
			if got[0] != "JOINED" || !strings.Contains(strings.Join(got, " "), tc.event) {
				t.Errorf("events = %v; want JOINED … %s … LEFT", got, tc.event)
			}
		})
	}
}

func refusalLine(logs string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "ingest refused") {
			return l
		}
	}
	return ""
}

// TestSecondPublisherRefused: while one publisher streams with a key, a
// second one with the same key is refused (REUSE_OF_STREAM_KEY) and the
// first goes on.
func TestSecondPublisherRefused(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	logs := &testkit.SyncBuffer{}
	srv := startIngest(t, env, logs)
	st := env.CreateStage(t, "twice")
	ic := createIngest(t, env, *st.Arn, types.IngestProtocolRtmps, false, "first", nil)
	url := fmt.Sprintf("rtmps://%s/app/%s", srv.RTMPSAddr(), *ic.StreamKey)
	first := startFFmpeg(t, url, append(publishArgs("green", 6), "-tls_verify", "0")...)
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, withLogs(testkit.Until("ACTIVE", func() bool { return ingestState(t, env, ic.Arn) == types.IngestConfigurationStateActive }), logs))
	second := startFFmpeg(t, url, append(publishArgs("blue", 2), "-tls_verify", "0")...)
	if err := second.wait(t, 15*time.Second); err == nil {
		t.Errorf("the second publisher succeeded; want it refused")
	}
	if s := ingestState(t, env, ic.Arn); s != types.IngestConfigurationStateActive {
		t.Errorf("state after the refusal = %s; want the first publisher ACTIVE", s)
	}
	if err := first.wait(t, 15*time.Second); err != nil {
		t.Errorf("the first publisher: %v\n%s", err, first.stderr.String())
	}
	if l := refusalLine(logs.String()); !strings.Contains(l, "REUSE_OF_STREAM_KEY") {
		t.Errorf("refusal logged as %q", l)
	}
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, testkit.Until("LEFT", func() bool {
		got := events(t, env, *st.Arn, *ic.ParticipantId)
		return len(got) > 0 && got[len(got)-1] == "LEFT"
	}))
	want := "JOINED PUBLISH_STARTED JOIN_ERROR:REUSE_OF_STREAM_KEY PUBLISH_STOPPED LEFT"
	if got := strings.Join(events(t, env, *st.Arn, *ic.ParticipantId), " "); got != want {
		t.Errorf("events = %s; want %s", got, want)
	}
}

// TestGarbageAndDisconnect: bytes that are no RTMP, and a connection that
// stops mid-handshake, leave the server serving; DisconnectParticipant
// ends a publish (the configuration detaches, as in IVS); Close ends
// everything and leaves no goroutine of the package.
func TestGarbageAndDisconnect(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	logs := &testkit.SyncBuffer{}
	tlsCfg, _, _, err := ingest.SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ingest.New(ingest.Config{RTMPAddr: "127.0.0.1:0", RTMPSAddr: "127.0.0.1:0", TLS: tlsCfg,
		HandshakeTimeout: time.Second, Logger: newLogger(logs)}, env.Store, env.Stage)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(env.Ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, addr := range []net.Addr{srv.RTMPAddr(), srv.RTMPSAddr()} {
		junk := make([]byte, 5000)
		_, _ = rand.Read(junk)
		for _, b := range [][]byte{junk, {3}, nil} { // garbage; a handshake begun; silence
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write(b)
			defer c.Close()
		}
	}
	st := env.CreateStage(t, "kick")
	ic := createIngest(t, env, *st.Arn, types.IngestProtocolRtmp, true, "enc", nil)
	ff := startFFmpeg(t, fmt.Sprintf("rtmp://%s/app/%s", srv.RTMPAddr(), *ic.StreamKey), publishArgs("white", 20)...)
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, testkit.Until("ACTIVE", func() bool { return ingestState(t, env, ic.Arn) == types.IngestConfigurationStateActive }))
	if _, err := env.API.DisconnectParticipant(env.Ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: st.Arn, ParticipantId: ic.ParticipantId}); err != nil {
		t.Fatal(err)
	}
	if err := ff.wait(t, 10*time.Second); err == nil {
		t.Errorf("ffmpeg went on after DisconnectParticipant")
	}
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, testkit.Until("INACTIVE", func() bool { return ingestState(t, env, ic.Arn) == types.IngestConfigurationStateInactive }))
	out, err := env.API.GetIngestConfiguration(env.Ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: ic.Arn})
	if err != nil || aws.ToString(out.IngestConfiguration.StageArn) != "" {
		t.Errorf("after DisconnectParticipant the configuration's stage is %q (%v); want detached", aws.ToString(out.IngestConfiguration.StageArn), err)
	}
	if !strings.Contains(logs.String(), "RTMP handshake") {
		t.Errorf("garbage not logged:\n%s", logs)
	}
	srv.Close()
	testkit.CheckNoneRunning(t, "stagehand/ingest.")
}

// TestMalformedMedia: a publisher with a valid key whose media is
// malformed — an empty AAC sequence header (which once panicked the
// server), H.264 frames before the AVC sequence header — has its
// connection ended with the reason logged, and the server goes on: the
// same key publishes right after.
func TestMalformedMedia(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	logs := &testkit.SyncBuffer{}
	srv := startIngest(t, env, logs)
	st := env.CreateStage(t, "malformed")
	ic := createIngest(t, env, *st.Arn, types.IngestProtocolRtmp, true, "enc", nil)
	u, err := url.Parse(fmt.Sprintf("rtmp://%s/app/%s", srv.RTMPAddr(), *ic.StreamKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		msg  message.Message
		log  string // in the connection's last log line
	}{
		{"empty AAC sequence header", &message.Audio{ChunkStreamID: message.AudioChunkStreamID, MessageStreamID: 1,
			Codec: message.CodecMPEG4Audio, Rate: message.AudioRate44100, Depth: message.AudioDepth16, IsStereo: true,
			AACType: message.AudioAACTypeConfig}, "empty AAC sequence header"},
		{"H.264 before its sequence header", &message.Video{ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 1,
			Codec: message.CodecH264, IsKeyFrame: true, Type: message.VideoTypeAU, AU: []byte{0, 0, 0, 2, 0x65, 0x88}}, "before any H.264 sequence header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(logs.String())
			c := &gortmplib.Client{URL: u, Publish: true}
			if err := c.Initialize(ctx(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Write(tc.msg); err != nil {
				t.Fatal(err)
			}
			_ = c.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, err := c.Read(); err != nil {
					break // the server closed the connection
				}
			}
			testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, withLogs(testkit.Until("the connection's end logged", func() bool {
				l := logs.String()[before:]
				return strings.Contains(l, "ingest refused") || strings.Contains(l, "RTMP connection ended")
			}), logs))
			if l := logs.String()[before:]; !strings.Contains(l, tc.log) || strings.Contains(l, "panicked") {
				t.Errorf("logged:\n%s\nwant the reason %q", l, tc.log)
			}
			testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, testkit.Until("INACTIVE", func() bool { return ingestState(t, env, ic.Arn) == types.IngestConfigurationStateInactive }))
		})
	}
	metric := func(name string, labels ...string) float64 {
		return promtest.Value(t, srv.Collectors(), name, labels...)
	}
	ff := startFFmpeg(t, u.String(), publishArgs("white", 3)...)
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, withLogs(testkit.Until("ACTIVE after the malformed publishers", func() bool {
		return ingestState(t, env, ic.Arn) == types.IngestConfigurationStateActive
	}), logs))
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, testkit.Until("a publisher in the metrics", func() bool { return metric("stagehand_ingest_publishers") == 1 }))
	if err := ff.wait(t, 20*time.Second); err != nil {
		t.Errorf("ffmpeg after the malformed publishers: %v\n%s", err, ff.stderr.String())
	}
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, testkit.Until("the publish's end in the metrics", func() bool {
		return metric("stagehand_ingest_connections_total", "outcome", "ended") == 1
	}))
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"stagehand_ingest_publishers", nil, 0},
		{"stagehand_ingest_connections_total", []string{"outcome", "refused"}, 2},
		{"stagehand_ingest_connections_total", []string{"outcome", "panic"}, 0},
		{"stagehand_ingest_refusals_total", []string{"code", "INVALID_INPUT"}, 1},
		{"stagehand_ingest_refusals_total", []string{"code", "INVALID_VIDEO_CODEC"}, 1},
		{"stagehand_ingest_bad_frames_total", []string{"kind", "video"}, 0},
	} {
		if got := metric(m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	// 3 s at 30 fps, and the bytes of four connections.
	if got := metric("stagehand_ingest_video_frames_total"); got < 80 || got > 95 {
		t.Errorf("stagehand_ingest_video_frames_total = %v, want about 90", got)
	}
	if got := metric("stagehand_ingest_received_bytes_total"); got < 50_000 {
		t.Errorf("stagehand_ingest_received_bytes_total = %v, want the publish's bytes", got)
	}
	if got := strings.Join(events(t, env, *st.Arn, *ic.ParticipantId), " "); !strings.Contains(got, "PUBLISH_ERROR:INVALID_INPUT") {
		t.Errorf("events = %s; want the empty AAC header's PUBLISH_ERROR:INVALID_INPUT", got)
	}
}
