//go:build security

package securitytest

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/stagehand-rt/stagehand/ingest"
	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
)

// logBuffer collects log lines written from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestIngestKeyNotLogged: an encoder that sends its stream key in a tcUrl
// that does not parse (the library's error quotes it whole) finds it in
// no log line, the stage's included.
func TestIngestKeyNotLogged(t *testing.T) {
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env := stagetest.Start(t, stagetest.Options{Stage: stage.Config{Logger: logger}})
	srv, err := ingest.New(ingest.Config{RTMPAddr: "127.0.0.1:0", Logger: logger}, env.Store, env.Stage)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(env.Ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st := env.CreateStage(t, "ingest-keys")
	out, err := env.API.CreateIngestConfiguration(env.Ctx, &ivsrealtime.CreateIngestConfigurationInput{
		StageArn: st.Arn, IngestProtocol: types.IngestProtocolRtmp, InsecureIngest: true})
	if err != nil {
		t.Fatal(err)
	}
	key := aws.ToString(out.IngestConfiguration.StreamKey)
	secret := key[strings.LastIndexByte(key, '_')+1:]
	Attack(t, "stream key in a broken tcUrl", func(t *testing.T) {
		for _, c := range []struct{ tcURL, name string }{
			{"rtmp://[::1/app/" + key, "live"}, // the key in the tcUrl
			{"rtmp://[::1/app", key},           // in the stream name, joined to a broken tcUrl
			{"rtmp://127.0.0.1/app/" + key + "/%zz", key},
		} {
			rtmpConnect(t, srv.RTMPAddr().String(), c.tcURL, c.name)
		}
		testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, testkit.Until("three connections logged",
			func() bool { return strings.Count(logs.String(), "RTMP connection ended") >= 3 }))
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "RTMP connection ended") {
				t.Log(l)
			}
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the stream key's secret is in the logs:\n%s", logs)
		}
	})
}

// rtmpConnect speaks RTMP as an encoder would up to publish, with tcURL
// and stream name as given, and waits for the server to hang up.
func rtmpConnect(t *testing.T, addr, tcURL, name string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	bc := bytecounter.NewReadWriter(nc)
	if _, _, err := handshake.DoClient(bc, false, false); err != nil {
		t.Fatal(err)
	}
	mrw := message.NewReadWriter(bc, bc, false)
	for _, m := range []message.Message{
		&message.CommandAMF0{ChunkStreamID: 3, Name: "connect", CommandID: 1, Arguments: []any{
			amf0.Object{{Key: "app", Value: "app"}, {Key: "tcUrl", Value: tcURL}}}},
		&message.CommandAMF0{ChunkStreamID: 8, MessageStreamID: 1, Name: "publish", CommandID: 2,
			Arguments: []any{nil, name, "live"}},
	} {
		if err := mrw.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	for {
		if _, err := mrw.Read(); err != nil {
			return // the server hung up
		}
	}
}
