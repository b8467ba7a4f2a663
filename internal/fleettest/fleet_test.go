//go:build faults

package fleettest

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
	accessKey = "AKIAFLEETTEST"
	secretKey = "fleet-test-secret"
	channel   = "arn:aws:ivs:us-east-1:123456789012:channel/fleetFLEET12"
	bucket    = "fleet"
)

// fleet is the deployment under test.
type fleet struct {
	t        *testing.T
	bin, dir string
	secrets  string // the NATS secrets stagehand nats-secrets wrote: every link is TLS with a role's password
	nats     []*node
	natsURL  string
	serve    *testserver.Process         // the first serve node
	serves   map[int]*testserver.Process // every serve node, by pid
	stageURL string                      // the stage cluster's address (a balancer with several nodes)
	api      *ivsrealtime.Client
	s3srv    *testserver.S3
	s3c      *s3.Client
	rtmp     *testserver.RTMP
	store    *store.Store
	js       jetstream.JetStream
	workers  map[int]*workerProc // by pid
	nextW    int
}

type node struct {
	name, addr, clusterAddr, dir string
	proc                         *testserver.Process
}

type workerProc struct {
	name, dir string
	proc      *testserver.Process
}

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stagehand")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/stagehand")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// fleetSpec sizes a fleet: several stage nodes (serve --no-worker) stand
// behind one balancer for the stage and one for the API.
type fleetSpec struct {
	workers, stageNodes int
}

func startFleet(t *testing.T, spec fleetSpec) *fleet {
	t.Helper()
	f := &fleet{t: t, bin: build(t), dir: t.TempDir(), workers: map[int]*workerProc{},
		serves: map[int]*testserver.Process{}}
	f.secrets = filepath.Join(f.dir, "nats-secrets")
	if out, err := exec.Command(f.bin, "nats-secrets", "--dir", f.secrets, "--hosts", "127.0.0.1,localhost").
		CombinedOutput(); err != nil {
		t.Fatalf("nats-secrets: %v\n%s", err, out)
	}
	var urls, routes []string
	for i := range 3 {
		n := &node{name: fmt.Sprintf("n%d", i+1), addr: addr(t), clusterAddr: addr(t), dir: filepath.Join(f.dir, fmt.Sprintf("nats%d", i+1))}
		f.nats = append(f.nats, n)
		urls = append(urls, "nats://"+n.addr)
		routes = append(routes, "nats-route://"+n.clusterAddr)
	}
	f.natsURL = strings.Join(urls, ",")
	for _, n := range f.nats {
		f.startNode(n, routes)
	}
	f.s3srv = testserver.StartS3(t)
	f.s3c = upload.NewClient(upload.ClientConfig{Endpoint: f.s3srv.Endpoint, AccessKey: f.s3srv.AccessKey, SecretKey: f.s3srv.SecretKey, PathStyle: true})
	if _, err := f.s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	f.rtmp = testserver.StartRTMP(t)
	f.startServes(max(1, spec.stageNodes))
	nc, err := nats.Connect(f.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
		f.controlLogin(), nats.RootCAs(f.secret("control", "ca.crt")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	f.js = js
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if f.store, err = store.Open(ctx, js, store.Config{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	for range spec.workers {
		f.startWorker("")
	}
	return f
}

// startServes starts n serve nodes (the API and a stage node each, no
// worker); with more than one, balancers stand in front of their APIs and
// their stage nodes.
func (f *fleet) startServes(n int) {
	apiAddrs, stageAddrs := make([]string, n), make([]string, n)
	for i := range n {
		apiAddrs[i], stageAddrs[i] = addr(f.t), addr(f.t)
	}
	apiURL := "http://" + apiAddrs[0]
	f.stageURL = "http://" + stageAddrs[0]
	if n > 1 {
		apiURL, f.stageURL = testserver.StartBalancer(f.t, apiAddrs).URL(), testserver.StartBalancer(f.t, stageAddrs).URL()
	}
	for i := range n {
		name := "serve"
		if i > 0 {
			name = fmt.Sprintf("serve%d", i+1)
		}
		p := f.run(name, "serve", "--no-worker", "--nats-url", f.natsURL, "--replicas", "3",
			"--nats-creds", f.secret("control", "control.creds"), "--nats-tls-ca", f.secret("control", "ca.crt"),
			"--api-addr", apiAddrs[i], "--stage-addr", stageAddrs[i], "--stage-url", f.stageURL, "--ice-ip", "127.0.0.1",
			"--rtmp-addr", "", "--rtmps-addr", "", "--data-dir", filepath.Join(f.dir, name),
			"--access-key-id", accessKey, "--secret-access-key", secretKey, "--channel", channel+"="+f.rtmp.URL("fleet"))
		if i == 0 {
			f.serve = p
		}
		f.serves[p.Pid()] = p
		// One at a time: the first creates the buckets and streams (once the
		// cluster elected its JetStream leader), which the others then find.
		f.waitAPI("http://"+apiAddrs[i], p)
	}
	f.api = ivsrealtime.New(ivsrealtime.Options{Region: "us-east-1", BaseEndpoint: aws.String(apiURL),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")})
	f.waitAPI(apiURL, f.serve)
}

// waitAPI waits until the API at url answers.
func (f *fleet) waitAPI(url string, p *testserver.Process) {
	api := ivsrealtime.New(ivsrealtime.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")})
	testkit.WaitFor(f.t, 90*time.Second, 250*time.Millisecond, func() error {
		if _, err := api.ListStages(context.Background(), &ivsrealtime.ListStagesInput{}); err != nil {
			return fmt.Errorf("the API at %s does not answer (see %s): %w", url, p.LogPath(), err)
		}
		return nil
	})
}

func addr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testserver.FreePort(t))
}

func (f *fleet) run(name string, args ...string) *testserver.Process {
	p := testserver.StartProcess(f.t, filepath.Join(f.dir, name+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".log"), f.bin, args...)
	f.t.Cleanup(func() {
		if f.t.Failed() {
			b, _ := os.ReadFile(p.LogPath())
			if d := os.Getenv("STAGEHAND_FLEET_LOGS"); d != "" { // keep whole logs of a failed run
				_ = os.WriteFile(filepath.Join(d, filepath.Base(p.LogPath())), b, 0o644)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			f.t.Logf("last lines of %s (%s):\n%s", name, strings.Join(args[:1], " "), strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	})
	return p
}

func (f *fleet) startNode(n *node, routes []string) {
	n.proc = f.run(n.name, "nats", "--name", n.name, "--addr", n.addr, "--cluster-addr", n.clusterAddr,
		"--routes", strings.Join(routes, ","), "--store-dir", n.dir, "--users", f.secret("nats", "users"),
		"--tls-cert", f.secret("nats", "node.crt"), "--tls-key", f.secret("nats", "node.key"),
		"--tls-ca", f.secret("nats", "ca.crt"))
}

// secret is a file of the fleet's NATS secrets directory.
func (f *fleet) secret(dir, name string) string { return filepath.Join(f.secrets, dir, name) }

// controlLogin logs the test in to NATS as serve does.
func (f *fleet) controlLogin() nats.Option {
	b, err := os.ReadFile(f.secret("control", "control.creds"))
	if err != nil {
		f.t.Fatal(err)
	}
	user, pass, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	return nats.UserInfo(user, pass)
}

func (f *fleet) routes() []string {
	var r []string
	for _, n := range f.nats {
		r = append(r, "nats-route://"+n.clusterAddr)
	}
	return r
}

// startWorker starts a worker; name reuses that worker's data directory
// (a restart on the same volume).
func (f *fleet) startWorker(name string) *workerProc {
	if name == "" {
		f.nextW++
		name = fmt.Sprintf("w%d", f.nextW)
	}
	w := &workerProc{name: name, dir: filepath.Join(f.dir, name)}
	w.proc = f.run(name, "worker", "--nats-url", f.natsURL, "--replicas", "3", "--data-dir", w.dir,
		"--nats-creds", f.secret("worker", "worker.creds"), "--nats-tls-ca", f.secret("worker", "ca.crt"),
		"--s3-endpoint", f.s3srv.Endpoint, "--s3-access-key-id", f.s3srv.AccessKey, "--s3-secret-access-key", f.s3srv.SecretKey,
		"--channel", channel+"="+f.rtmp.URL("fleet"), "--ice-ip", "127.0.0.1", "--metrics-addr", "", "--idle-timeout", "0")
	f.workers[w.proc.Pid()] = w
	return w
}

// runner is the worker process running composition id.
func (f *fleet) runner(id string) (*workerProc, ivs.Composition) {
	c, err := f.store.Compositions.Get(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	if c.Run == nil {
		return nil, c
	}
	pid, _ := strconv.Atoi(c.Run.Worker[strings.LastIndex(c.Run.Worker, ":")+1:])
	return f.workers[pid], c
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

// waitResumed waits until a worker other than from records again: it
// reserved a segment number past next.
func (f *fleet) waitResumed(id string, from *workerProc, next int, within time.Duration) (*workerProc, time.Duration) {
	start := time.Now()
	var w *workerProc
	testkit.WaitFor(f.t, within, 100*time.Millisecond, func() error {
		var c ivs.Composition
		if w, c = f.runner(id); w == nil || w == from || recording(c).Next <= next {
			return fmt.Errorf("composition %s not resumed", id)
		}
		return nil
	})
	return w, time.Since(start)
}

// recording is the composite recording under prefix in the fleet's bucket.
func (f *fleet) recording(prefix string) *recordingcheck.Recording {
	return &recordingcheck.Recording{S3: f.s3c, Bucket: bucket, Prefix: prefix, Rendition: "180p30"}
}

func (f *fleet) publish(stageARN *string, name, colour string) {
	tok, err := f.api.CreateParticipantToken(context.Background(), &ivsrealtime.CreateParticipantTokenInput{StageArn: stageARN,
		UserId: aws.String(name), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.run("publish-"+name, "publish", "--token", *tok.ParticipantToken.Token, "--color", colour, "--size", "320x180",
		"--bitrate", "300000", "--ice-ip", "127.0.0.1")
}

// figures are what the fault tests measured, printed at the end.
type figures struct {
	rows []string
}

func (fg *figures) add(format string, args ...any) {
	fg.rows = append(fg.rows, fmt.Sprintf(format, args...))
}

func (fg *figures) print(t *testing.T) {
	t.Helper()
	var b strings.Builder
	b.WriteString("\nfault figures\n")
	for _, r := range fg.rows {
		b.WriteString("  " + r + "\n")
	}
	t.Log(b.String())
	fmt.Fprint(os.Stdout, b.String())
}
