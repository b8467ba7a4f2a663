//go:build containers

package containertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-rt/stagehand/internal/recordingcheck"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/store"
)

const (
	accessKey = "AKIACONTAINERTEST"
	secretKey = "container-test-secret"
	s3Key     = "stagehandct"
	s3Secret  = "container-test-s3-secret"
	channel   = "arn:aws:ivs:us-east-1:123456789012:channel/ctrFLEET1234"
	bucket    = "fleet"
	rendition = "180p30"
	// The workers' stop grace period, as compose.yaml's stop_grace_period
	// and the Helm chart's terminationGracePeriodSeconds.
	gracePeriod = 60 * time.Second
)

// fleet is the containerized deployment under test.
type fleet struct {
	t       *testing.T
	e       *engine
	image   string
	bin     string // the same binary, on the host: publishers and nats-secrets
	secrets map[string]string
	nats    []*container
	natsURL string
	serve   *container
	workers map[string]*container // by name (= host name, the first part of a worker's id)
	api     *ivsrealtime.Client
	apiURL  string
	s3c     *s3.Client
	s3URL   string
	rtmpURL string
	recDir  string // where the RTMP server records each stream
	store   *store.Store
	health  map[*container]string
}

// TestContainerFleet builds the image and runs the fleet of
// docker/compose.yaml as containers — 3 NATS nodes (users and TLS), serve
// (--no-worker), 2 workers, versitygw and nginx-rtmp — with host
// networking on 127.0.0.1, then drives a composition to S3 and RTMP
// through a worker killed (podman kill: it resumes on the other) and a
// worker stopped (podman stop: drained hand-off within the grace period),
// checks the healthchecks, the non-root user and the data volumes, and
// that no segment was lost. It prints the figures.
func TestContainerFleet(t *testing.T) {
	began := time.Now()
	var fig figures
	f := startFleet(t, &fig)
	ctx := context.Background()

	t.Run("healthy, non-root, data volume writable", func(t *testing.T) {
		for c, url := range f.health {
			checkHealthy(t, c, url)
		}
		for c := range f.health {
			uid, err := c.exec("id", "-u")
			if err != nil || uid != "10001" {
				t.Errorf("%s runs as uid %q (%v), want 10001 (non-root)", c.name, uid, err)
			}
			// The process wrote its state into the volume as that user.
			owner, err := c.exec("sh", "-c", "test -w /var/lib/stagehand && find /var/lib/stagehand -mindepth 1 -maxdepth 1 -printf '%U %p\\n'")
			if err != nil || !strings.Contains(owner, "10001 /var/lib/stagehand/") {
				t.Errorf("%s: data volume not written by uid 10001: %q %v", c.name, owner, err)
			}
		}
	})

	st, err := f.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("containers")})
	if err != nil {
		t.Fatal(err)
	}
	f.publish(st.Stage.Arn, "alice", "orange")
	f.publish(st.Stage.Arn, "bob", "teal")
	enc, err := f.api.CreateEncoderConfiguration(ctx, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(180), Framerate: aws.Float32(30), Bitrate: aws.Int32(300_000)}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := f.api.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	out, err := f.api.StartComposition(ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Stage.Arn,
		Destinations: []types.DestinationConfiguration{
			{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: sc.StorageConfiguration.Arn,
				EncoderConfigurationArns: []string{*enc.EncoderConfiguration.Arn},
				RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{
					TargetSegmentDurationSeconds: aws.Int32(2)}}}},
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(channel), EncoderConfigurationArn: enc.EncoderConfiguration.Arn}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Composition.Arn
	id := (*arn)[strings.LastIndex(*arn, "/")+1:]
	comp := f.waitState(arn, types.CompositionStateActive, 60*time.Second)
	fig.add("StartComposition → ACTIVE: %s", time.Since(started).Round(10*time.Millisecond))
	// rec remembers every segment the stored playlist ever listed: each
	// must be in the final playlist, and stored.
	rec := &recordingcheck.Recording{S3: f.s3c, Bucket: bucket, Rendition: rendition,
		Prefix: *comp.Destinations[0].Detail.S3.RecordingPrefix}
	rec.WaitSegments(t, 3, 40*time.Second)
	resumes := 0

	t.Run("podman kill of the worker running it", func(t *testing.T) {
		w, c := f.runner(id)
		if w == nil {
			t.Fatalf("no worker container runs the composition (run %+v)", c.Run)
		}
		next := recording(c).Next
		f.e.must("kill", w.name) // SIGKILL
		_, took := f.waitResumed(t, id, w, next, 40*time.Second)
		resumes++
		fig.add("podman kill of the running worker: resumed in the other container %s after the kill (bound: 10 s AckWait + start)", took.Round(10*time.Millisecond))
		if took > 20*time.Second {
			t.Errorf("resumed %s after the kill, want < 20 s", took)
		}
		rec.WaitSegments(t, rec.Observe(t)+2, 30*time.Second)
		// The killed container comes back on its volume, as a restart policy would.
		f.e.must("start", w.name)
		checkHealthy(t, w, f.health[w])
	})

	t.Run("podman stop of the worker running it (drain)", func(t *testing.T) {
		w, c := f.runner(id)
		if w == nil {
			t.Fatalf("no worker container runs the composition (run %+v)", c.Run)
		}
		next := recording(c).Next
		start := time.Now()
		f.e.must("stop", "-t", strconv.Itoa(int(gracePeriod/time.Second)), w.name) // SIGTERM, SIGKILL after the grace period
		stopped := time.Since(start)
		if code := w.inspect("{{.State.ExitCode}}"); code != "0" {
			t.Errorf("the stopped worker exited with %s, want 0 (a drain, not the grace period's SIGKILL)", code)
		}
		if stopped >= gracePeriod {
			t.Errorf("podman stop took %s, the whole grace period", stopped)
		}
		f.waitResumed(t, id, w, next, 40*time.Second)
		took := time.Since(start) // from the stop's start, as the figure says
		resumes++
		// A hand-off, not a lapsed claim: that would take the 10 s AckWait.
		if took > 8*time.Second {
			t.Errorf("resumed %s after podman stop: the composition was not handed off, its claim lapsed", took)
		}
		fig.add("podman stop of the running worker: exited (code 0) in %s of its %s grace period; resumed in the other %s after the stop began",
			stopped.Round(10*time.Millisecond), gracePeriod, took.Round(10*time.Millisecond))
		// Its spool is empty: it uploaded what it had before it exited.
		if left, err := f.e.podman("run", "--rm", "--pull=never", "--network", "none", "--entrypoint", "find", "-v", w.name+"-data:/v:ro",
			f.image, "/v/spool", "-name", "*.ts"); err == nil && left != "" {
			t.Errorf("the drained worker left segments in its spool:\n%s", left)
		}
		rec.WaitSegments(t, rec.Observe(t)+2, 30*time.Second)
	})

	if _, err := f.api.StopComposition(ctx, &ivsrealtime.StopCompositionInput{Arn: arn}); err != nil {
		t.Fatal(err)
	}
	f.waitState(arn, types.CompositionStateStopped, 60*time.Second)
	lost := f.checkRecording(rec, resumes, &fig)
	fig.add("segments lost: %d", lost)
	fig.add("image %s: %s", f.image, f.e.must("image", "inspect", "--format", "{{.Size}}", f.image)+" bytes")
	fig.add("test time so far (image builds included): %s", time.Since(began).Round(time.Second))
	fig.print(t)
}

// startFleet builds the images and starts the fleet.
func startFleet(t *testing.T, fig *figures) *fleet {
	t.Helper()
	e := newEngine(t)
	f := &fleet{t: t, e: e, workers: map[string]*container{}, health: map[*container]string{}}
	begin := time.Now()
	e.ensureBase()

	// The stagehand image, from a binary built here (BINARY=prebuilt): no
	// Go image needed.
	ctxDir := filepath.Join(e.dir, "context")
	f.bin = filepath.Join(ctxDir, "bin", "stagehand")
	build := exec.Command("go", "build", "-o", f.bin, "./cmd/stagehand")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dockerfile := filepath.Join(repoRoot, "docker", "Dockerfile")
	base := []string{"--build-arg", "BASE_IMAGE=" + baseImage, "--build-arg", "GO_IMAGE=" + baseImage, "--build-arg", "BINARY=prebuilt"}
	e.podmanLog("runtime.log", nil, append(append([]string{"build", "--pull=never", "--network", "host", "--format", "docker",
		"--layers", "--target", "runtime", "-f", dockerfile, "-t", runtimeImage}, base...), ctxDir)...)
	f.image = "localhost/" + e.name("stagehand") + ":test"
	e.build(f.image, dockerfile, ctxDir, base...)

	// The S3 and RTMP servers' images, on the same base.
	s3Ctx := filepath.Join(e.dir, "s3-context")
	if err := os.MkdirAll(s3Ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	gw := filepath.Join(goBin(t), "versitygw")
	if err := copyFile(gw, filepath.Join(s3Ctx, "versitygw")); err != nil {
		t.Fatalf("versitygw (scripts/deps.sh --test installs it): %v", err)
	}
	s3Image, rtmpImage := "localhost/"+e.name("s3")+":test", "localhost/"+e.name("rtmp")+":test"
	e.build(s3Image, "testdata/s3.Dockerfile", s3Ctx, "--build-arg", "BASE_IMAGE="+baseImage)
	e.build(rtmpImage, "testdata/rtmp.Dockerfile", "testdata", "--build-arg", "BASE_IMAGE="+baseImage)
	fig.add("images built in %s", time.Since(begin).Round(time.Second))

	// NATS secrets, written by a one-shot container into a volume per role
	// as compose.yaml's nats-secrets service does.
	f.secrets = map[string]string{}
	var mounts []string
	for _, role := range []string{"nats", "control", "worker"} {
		f.secrets[role] = e.volume("secrets-" + role)
		mounts = append(mounts, "-v", f.secrets[role]+":/etc/stagehand/nats-secrets/"+role)
	}
	if out, err := e.podman(append(append([]string{"run", "--rm", "--pull=never", "--network", "none"}, mounts...),
		f.image, "nats-secrets", "--dir", "/etc/stagehand/nats-secrets", "--hosts", "127.0.0.1,localhost")...); err != nil {
		t.Fatalf("nats-secrets: %v\n%s", err, out)
	}

	fleetBegin := time.Now()
	// Servers: S3 and RTMP.
	s3Port := testserver.FreePort(t)
	f.s3URL = "http://127.0.0.1:" + strconv.Itoa(s3Port)
	e.run("s3", []string{"-v", e.volume("s3") + ":/data"}, s3Image,
		"--access", s3Key, "--secret", s3Secret, "--port", "127.0.0.1:"+strconv.Itoa(s3Port), "posix", "--nometa", "/data")
	rtmpPort := testserver.FreePort(t)
	f.rtmpURL = "rtmp://127.0.0.1:" + strconv.Itoa(rtmpPort) + "/app/fleet"
	rtmpConf := filepath.Join(e.dir, "rtmp")
	f.recDir = filepath.Join(rtmpConf, "rec")
	if err := os.MkdirAll(f.recDir, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(f.recDir, 0o777) // nginx runs as uid 10001
	writeFile(t, filepath.Join(rtmpConf, "nginx.conf"), testserver.RTMPConfig(rtmpPort, "/rec", "/tmp/nginx.pid", "stderr"))
	e.run("rtmp", []string{"-v", rtmpConf + "/nginx.conf:/etc/stagehand-rtmp/nginx.conf:ro", "-v", f.recDir + ":/rec"}, rtmpImage)
	testserver.WaitListening(t, s3Port, 30*time.Second)
	testserver.WaitListening(t, rtmpPort, 30*time.Second)

	// NATS: three nodes, users and TLS, routes over mutual TLS.
	var urls, routes []string
	type natsPorts struct{ client, cluster, monitor int }
	ports := make([]natsPorts, 3)
	for i := range ports {
		ports[i] = natsPorts{testserver.FreePort(t), testserver.FreePort(t), testserver.FreePort(t)}
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i].client))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i].cluster))
	}
	f.natsURL = strings.Join(urls, ",")
	for i, p := range ports {
		name := fmt.Sprintf("nats%d", i+1)
		health := fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", p.monitor)
		c := e.run(name, []string{"-v", e.volume(name+"-data") + ":/var/lib/stagehand", "-v", f.secrets["nats"] + ":/etc/stagehand/nats:ro",
			"-e", "STAGEHAND_HEALTH_URL=" + health}, f.image,
			"nats", "--name", name, "--addr", fmt.Sprintf("127.0.0.1:%d", p.client),
			"--cluster-addr", fmt.Sprintf("127.0.0.1:%d", p.cluster), "--monitor-addr", fmt.Sprintf("127.0.0.1:%d", p.monitor),
			"--store-dir", "/var/lib/stagehand/nats", "--routes", strings.Join(routes, ","),
			"--users", "/etc/stagehand/nats/users", "--tls-cert", "/etc/stagehand/nats/node.crt",
			"--tls-key", "/etc/stagehand/nats/node.key", "--tls-ca", "/etc/stagehand/nats/ca.crt")
		f.nats = append(f.nats, c)
		f.health[c] = health
	}

	// serve: the API and the stage, no worker.
	apiPort, stagePort := testserver.FreePort(t), testserver.FreePort(t)
	f.apiURL = "http://127.0.0.1:" + strconv.Itoa(apiPort)
	f.serve = e.run("serve", []string{"-v", e.volume("serve-data") + ":/var/lib/stagehand",
		"-v", f.secrets["control"] + ":/etc/stagehand/nats:ro",
		"-e", "STAGEHAND_NATS_URL=" + f.natsURL, "-e", "STAGEHAND_NATS_CREDS=/etc/stagehand/nats/control.creds",
		"-e", "STAGEHAND_NATS_TLS_CA=/etc/stagehand/nats/ca.crt",
		"-e", "STAGEHAND_ACCESS_KEY_ID=" + accessKey, "-e", "STAGEHAND_SECRET_ACCESS_KEY=" + secretKey,
		"-e", "STAGEHAND_HEALTH_URL=" + f.apiURL + "/metrics"}, f.image,
		"serve", "--no-worker", "--replicas", "3", "--data-dir", "/var/lib/stagehand/serve",
		"--api-addr", "127.0.0.1:"+strconv.Itoa(apiPort), "--stage-addr", "127.0.0.1:"+strconv.Itoa(stagePort),
		"--ice-ip", "127.0.0.1", "--rtmp-addr", "", "--rtmps-addr", "", "--channel", channel+"="+f.rtmpURL)
	f.health[f.serve] = f.apiURL + "/metrics"
	f.api = ivsrealtime.New(ivsrealtime.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.apiURL),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")})
	testkit.WaitFor(t, 90*time.Second, 250*time.Millisecond, func() error {
		if state := f.serve.inspect("{{.State.Status}}"); state != "running" {
			return fmt.Errorf("serve container %s", state)
		}
		_, err := f.api.ListStages(context.Background(), &ivsrealtime.ListStagesInput{})
		return err
	})

	// Two workers, each with its data volume (the spool).
	for i := range 2 {
		name := fmt.Sprintf("worker%d", i+1)
		metrics := "127.0.0.1:" + strconv.Itoa(testserver.FreePort(t))
		c := e.run(name, []string{"-v", e.volume(name+"-data") + ":/var/lib/stagehand",
			"-v", f.secrets["worker"] + ":/etc/stagehand/nats:ro",
			"-e", "STAGEHAND_NATS_URL=" + f.natsURL, "-e", "STAGEHAND_NATS_CREDS=/etc/stagehand/nats/worker.creds",
			"-e", "STAGEHAND_NATS_TLS_CA=/etc/stagehand/nats/ca.crt",
			"-e", "STAGEHAND_S3_ACCESS_KEY_ID=" + s3Key, "-e", "STAGEHAND_S3_SECRET_ACCESS_KEY=" + s3Secret,
			"-e", "STAGEHAND_HEALTH_URL=http://" + metrics + "/metrics",
			"--stop-timeout", strconv.Itoa(int(gracePeriod / time.Second))}, f.image,
			"worker", "--replicas", "3", "--data-dir", "/var/lib/stagehand", "--metrics-addr", metrics,
			"--s3-endpoint", f.s3URL, "--channel", channel+"="+f.rtmpURL, "--ice-ip", "127.0.0.1", "--idle-timeout", "0", "-v")
		f.workers[c.name] = c
		f.health[c] = "http://" + metrics + "/metrics"
	}

	// The test's own clients: S3 (the bucket) and NATS as control (which
	// worker runs the composition).
	f.s3c = upload.NewClient(upload.ClientConfig{Endpoint: f.s3URL, AccessKey: s3Key, SecretKey: s3Secret, PathStyle: true})
	testkit.WaitFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		_, err := f.s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)})
		return err
	})
	control := f.secretFile("control", "control.creds")
	user, pass, _ := strings.Cut(strings.TrimSpace(control), ":")
	caFile := filepath.Join(e.dir, "control-ca.crt")
	writeFile(t, caFile, f.secretFile("control", "ca.crt"))
	nc, err := nats.Connect(f.natsURL, nats.UserInfo(user, pass), nats.RootCAs(caFile),
		nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if f.store, err = store.Open(sctx, js, store.Config{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	fig.add("fleet of %d containers up (serve answering) in %s", 7, time.Since(fleetBegin).Round(100*time.Millisecond))
	return f
}

// secretFile reads a file nats-secrets wrote into a role's volume.
func (f *fleet) secretFile(role, name string) string {
	f.t.Helper()
	mp := f.e.must("volume", "inspect", "--format", "{{.Mountpoint}}", f.secrets[role])
	b, err := os.ReadFile(filepath.Join(mp, name))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

// checkHealthy runs the image's HEALTHCHECK (stagehand health) until it
// passes, and checks that podman records the container healthy.
func checkHealthy(t *testing.T, c *container, url string) {
	t.Helper()
	testkit.WaitFor(t, 60*time.Second, 500*time.Millisecond, func() error {
		out, err := c.e.podman("healthcheck", "run", c.name)
		if err != nil {
			return fmt.Errorf("%s (%s) not healthy: %w %s", c.name, url, err, out)
		}
		return nil
	})
	if s := c.inspect("{{.State.Health.Status}}"); s != "healthy" {
		t.Errorf("%s: health %q, want healthy", c.name, s)
	}
}

func (f *fleet) publish(stageARN *string, name, colour string) {
	tok, err := f.api.CreateParticipantToken(context.Background(), &ivsrealtime.CreateParticipantTokenInput{StageArn: stageARN,
		UserId: aws.String(name), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}})
	if err != nil {
		f.t.Fatal(err)
	}
	log := filepath.Join(f.e.dir, "publish-"+name+".log")
	testserver.StartProcess(f.t, log, f.bin, "publish", "--token", *tok.ParticipantToken.Token, "--color", colour,
		"--size", "320x180", "--bitrate", "300000", "--ice-ip", "127.0.0.1")
}

// runner is the worker container running composition id: a worker's id is
// its host name (the container's name) and its pid.
func (f *fleet) runner(id string) (*container, ivs.Composition) {
	f.t.Helper()
	c, err := f.store.Compositions.Get(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	if c.Run == nil {
		return nil, c
	}
	host, _, _ := strings.Cut(c.Run.Worker, ":")
	return f.workers[host], c
}

func recording(c ivs.Composition) ivs.RecordingRun {
	if c.Run == nil {
		return ivs.RecordingRun{}
	}
	for _, r := range c.Run.Recordings {
		return *r
	}
	return ivs.RecordingRun{}
}

// waitResumed waits until a worker other than from records again (it
// reserved a segment number past next) and says how long that took.
func (f *fleet) waitResumed(t *testing.T, id string, from *container, next int, within time.Duration) (*container, time.Duration) {
	t.Helper()
	start := time.Now()
	var w *container
	testkit.WaitFor(t, within, 100*time.Millisecond, func() error {
		var c ivs.Composition
		if w, c = f.runner(id); w == nil || w == from || recording(c).Next <= next {
			return fmt.Errorf("composition %s not resumed in another container", id)
		}
		return nil
	})
	return w, time.Since(start)
}

func (f *fleet) waitState(arn *string, want types.CompositionState, within time.Duration) *types.Composition {
	f.t.Helper()
	var comp *types.Composition
	testkit.WaitFor(f.t, within, 200*time.Millisecond, func() error {
		out, err := f.api.GetComposition(context.Background(), &ivsrealtime.GetCompositionInput{Arn: arn})
		if err != nil {
			return err
		}
		if comp = out.Composition; comp.State != want {
			return fmt.Errorf("composition %s, want %s", comp.State, want)
		}
		return nil
	})
	return comp
}

// checkRecording checks the one playlist after the faults: every segment
// ever listed is still listed and stored, numbers increase, one
// discontinuity per resume, the playlist ended; the whole recording, and a
// stream the RTMP server recorded, are checked with ffprobe. It returns
// the segments lost.
func (f *fleet) checkRecording(rec *recordingcheck.Recording, resumes int, fig *figures) int {
	t := f.t
	t.Helper()
	res := rec.Check(t, resumes)
	segs, text, lost := res.Segments, res.Text, res.Lost
	var total float64
	for _, s := range segs {
		total += s.Duration
	}
	// ffprobe the recording as a player would, through the S3 server.
	dir := filepath.Join(f.e.dir, "recording")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "playlist.m3u8"), text)
	for _, s := range segs {
		b, err := upload.Get(context.Background(), f.s3c, bucket, rec.Key(fmt.Sprintf("%d.ts", s.Index)))
		if err != nil {
			t.Fatalf("segment %d: %v", s.Index, err)
		}
		writeFile(t, filepath.Join(dir, fmt.Sprintf("%d.ts", s.Index)), string(b))
	}
	p := probe(t, "-show_entries", "stream=codec_name,width,height:format=duration", "-protocol_whitelist", "file,crypto",
		filepath.Join(dir, "playlist.m3u8"))
	if !strings.Contains(p, "h264") || !strings.Contains(p, "aac") || !strings.Contains(p, "width=320") || !strings.Contains(p, "height=180") {
		t.Errorf("ffprobe of the recording: want h264 320x180 + aac:\n%s", p)
	}
	streams, _ := filepath.Glob(filepath.Join(f.recDir, "fleet*.flv"))
	if len(streams) < 1+resumes {
		t.Errorf("the RTMP server recorded %d streams, want one per run (%d)", len(streams), 1+resumes)
	}
	var flvOK int
	for _, s := range streams {
		if out := probe(t, "-show_entries", "stream=codec_name", s); strings.Contains(out, "h264") {
			flvOK++
		}
	}
	if flvOK < len(streams) {
		t.Errorf("%d of %d RTMP streams have H.264 video", flvOK, len(streams))
	}
	fig.add("recording: %d segments (%.1f s) in one playlist, %d discontinuities for %d resumes; ffprobe: h264 320x180 + aac; RTMP streams: %d (one per run)",
		len(segs), total, res.Discontinuities, resumes, len(streams))
	return lost
}

func probe(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", append([]string{"-v", "error", "-of", "default=nw=1"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %v: %v", args, err)
	}
	return string(out)
}

func goBin(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "bin")
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// figures are what the test measured, printed at the end.
type figures struct{ rows []string }

func (fg *figures) add(format string, args ...any) {
	fg.rows = append(fg.rows, fmt.Sprintf(format, args...))
}

func (fg *figures) print(t *testing.T) {
	t.Helper()
	var b strings.Builder
	b.WriteString("\ncontainer fleet figures\n")
	for _, r := range fg.rows {
		b.WriteString("  " + r + "\n")
	}
	t.Log(b.String())
	fmt.Fprint(os.Stdout, b.String())
}
