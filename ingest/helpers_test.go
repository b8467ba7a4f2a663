package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/ingest"
	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
)

func TestMain(m *testing.M) {
	astiav.SetLogLevel(astiav.LogLevelError)
	os.Exit(m.Run())
}

// startIngest runs an ingest server for env on loopback ports, logging to
// logs; it is closed when the test ends.
func startIngest(t *testing.T, env *stagetest.Env, logs *testkit.SyncBuffer) *ingest.Server {
	t.Helper()
	tlsCfg, _, _, err := ingest.SelfSigned("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ingest.New(ingest.Config{RTMPAddr: "127.0.0.1:0", RTMPSAddr: "127.0.0.1:0", TLS: tlsCfg,
		Logger: newLogger(logs)}, env.Store, env.Stage)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(env.Ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// createIngest creates an ingest configuration through the API.
func createIngest(t *testing.T, env *stagetest.Env, stageARN string, proto types.IngestProtocol, insecure bool, user string, attrs map[string]string) types.IngestConfiguration {
	t.Helper()
	out, err := env.API.CreateIngestConfiguration(env.Ctx, &ivsrealtime.CreateIngestConfigurationInput{
		StageArn: aws.String(stageARN), IngestProtocol: proto, InsecureIngest: insecure,
		UserId: aws.String(user), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	return *out.IngestConfiguration
}

func ingestState(t *testing.T, env *stagetest.Env, arn *string) types.IngestConfigurationState {
	t.Helper()
	out, err := env.API.GetIngestConfiguration(env.Ctx, &ivsrealtime.GetIngestConfigurationInput{Arn: arn})
	if err != nil {
		t.Fatal(err)
	}
	return out.IngestConfiguration.State
}

// ffmpeg is a Debian ffmpeg publishing a test pattern.
type ffmpeg struct {
	cmd     *exec.Cmd
	stderr  testkit.SyncBuffer
	started time.Time
	done    chan error
}

// publishArgs are the inputs and codecs of a publish: a solid colour at
// 320x240, 30 fps, and a 440 Hz tone, for secs seconds in real time,
// encoded with codecs (default: H.264 baseline with a keyframe every
// second, and AAC).
func publishArgs(colour string, secs int, codecs ...string) []string {
	d := strconv.Itoa(secs)
	if len(codecs) == 0 {
		codecs = []string{"-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
			"-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"}
	}
	return append([]string{"-re", "-f", "lavfi", "-i", "color=c=" + colour + ":s=320x240:r=30:d=" + d,
		"-f", "lavfi", "-i", "sine=f=440:r=44100:d=" + d}, codecs...)
}

// startFFmpeg runs ffmpeg with args, then -f flv url; the test ends it.
func startFFmpeg(t *testing.T, url string, args ...string) *ffmpeg {
	t.Helper()
	all := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, args...)
	all = append(all, "-f", "flv", url)
	f := &ffmpeg{cmd: exec.Command("ffmpeg", all...), done: make(chan error, 1)}
	f.cmd.Stderr = &f.stderr
	f.started = time.Now()
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	go func() { f.done <- f.cmd.Wait() }()
	t.Cleanup(func() {
		_ = f.cmd.Process.Kill()
		if err := <-f.done; err != nil {
			t.Logf("ffmpeg: %v", err) // killed, usually
		}
	})
	return f
}

// wait waits for ffmpeg to exit and returns its error.
func (f *ffmpeg) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-f.done:
		f.done <- err // for Cleanup
		return err
	case <-time.After(within):
		t.Fatalf("ffmpeg still running after %v; stderr:\n%s", within, f.stderr.String())
		return nil
	}
}

// withLogs adds logs to cond's error, for a failed wait to show what the
// server said.
func withLogs(cond func() error, logs fmt.Stringer) func() error {
	return func() error {
		if err := cond(); err != nil {
			return fmt.Errorf("%w; logs:\n%v", err, logs)
		}
		return nil
	}
}

// events lists the names (and error codes) of a participant's events in
// the stage's sessions, oldest first.
func events(t *testing.T, env *stagetest.Env, stageARN, pid string) []string {
	t.Helper()
	ss, err := env.API.ListStageSessions(env.Ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stageARN)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := len(ss.StageSessions) - 1; i >= 0; i-- {
		out, err := env.API.ListParticipantEvents(env.Ctx, &ivsrealtime.ListParticipantEventsInput{
			StageArn: aws.String(stageARN), SessionId: ss.StageSessions[i].SessionId, ParticipantId: aws.String(pid)})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events {
			n := string(e.Name)
			if e.ErrorCode != "" {
				n += ":" + string(e.ErrorCode)
			}
			names = append(names, n)
		}
	}
	return names
}

// centre returns the RGB pixel in the middle of the frame at second at.
func centre(t *testing.T, path string, at float64, w, h int) [3]byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-ss", strconv.FormatFloat(at, 'f', 2, 64), "-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || len(out) != w*h*3 {
		t.Fatalf("ffmpeg frame at %.1f s: %v, %d bytes\n%s", at, err, len(out), stderr.String())
	}
	i := (h/2*w + w/2) * 3
	return [3]byte{out[i], out[i+1], out[i+2]}
}

// ctx bounds a step of a test.
func ctx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func newLogger(logs *testkit.SyncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(logs, nil))
}
