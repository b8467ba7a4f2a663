// Package stagetest starts a whole control plane and stage on loopback for
// tests: embedded NATS JetStream, the store, the job queue, the IVS API
// (reached through the real AWS SDK client with SigV4) and the stage
// server. Everything binds 127.0.0.1 and is stopped by t.Cleanup.
package stagetest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/nats-io/nats.go"

	"github.com/stagehand-rt/stagehand/api"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/recording"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

// Credentials and namespace of the test API.
const (
	Region    = "us-east-1"
	Account   = "123456789012"
	KeyID     = "AKIASTAGETEST"
	SecretKey = "stage-test-secret"
)

// Env is a running control plane and stage.
type Env struct {
	Ctx      context.Context
	API      *ivsrealtime.Client
	APIURL   string
	StageURL string // base URL of the stage server
	Stage    *stage.Server
	Store    *store.Store
	Queue    *jobs.Queue
	NC       *nats.Conn

	node     *stageNode // the stage server serving StageURL now
	verifier *tokenstore.Verifier
	signer   *token.Signer // the server's key: cluster nodes relay with it
	logger   *slog.Logger
}

// Options adjust the servers; Web serves the stage's other paths.
type Options struct {
	Stage stage.Config
	Web   http.Handler
	// Channels are the IVS channels compositions may send to (ARN → URL).
	Channels map[string]string
	// Jobs sizes the job queue (AckWait, MaxDeliver).
	Jobs jobs.Config
	// Cluster makes the stage server a node of a stage cluster, whose
	// node URL is its own address; AddNode starts more nodes.
	Cluster *stage.ClusterConfig
}

// Start brings everything up; t.Cleanup stops it.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	nc, js := testkit.JetStream(t)
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := jobs.Open(ctx, js, o.Jobs)
	if err != nil {
		t.Fatal(err)
	}
	stageLn := listen(t)
	apiLn := listen(t)
	stageURL := "http://" + stageLn.Addr().String()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ns2 := ivs.Namespace{Region: Region, Account: Account}
	srv, err := api.New(ctx, api.Config{
		Namespace:   ns2,
		Endpoints:   ivs.StageEndpoints{Events: "ws://" + stageLn.Addr().String() + "/events", WHIP: stageURL + "/whip"},
		Credentials: map[string]string{KeyID: SecretKey},
		Channels:    o.Channels,
		Logger:      logger,
	}, st, q, nc)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := tokenstore.NewVerifier(ctx, st, ns2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.Stage
	if cfg.ICEIPs == nil {
		cfg.ICEIPs = []string{"127.0.0.1"}
	}
	if cfg.Logger == nil {
		cfg.Logger = logger
	}
	if cfg.OnPublishStarted == nil {
		cfg.OnPublishStarted = recording.NewDispatcher(st, q, logger).Hook()
	}
	signer, err := tokenstore.LoadSigner(ctx, st, ns2)
	if err != nil {
		t.Fatal(err)
	}
	if o.Cluster != nil {
		cc := *o.Cluster
		cc.NodeURL = stageURL
		if cc.RelaySigner == nil {
			cc.RelaySigner = signer
		}
		cfg.Cluster = &cc
	}
	serveOn(t, apiLn, srv)
	node := &stageNode{cfg: cfg, verifier: verifier, store: st, nc: nc, web: o.Web}
	node.start(t, stageLn)
	apiURL := "http://" + apiLn.Addr().String()
	client := ivsrealtime.New(ivsrealtime.Options{
		Region: Region, BaseEndpoint: aws.String(apiURL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(KeyID, SecretKey, ""),
	})
	return &Env{Ctx: ctx, API: client, APIURL: apiURL, StageURL: stageURL, Stage: node.sfu, Store: st, Queue: q,
		NC: nc, node: node, verifier: verifier, signer: signer, logger: logger}
}

// Node is one more stage node of a clustered Env.
type Node struct {
	URL    string // its own base URL
	Server *stage.Server
	node   *stageNode
}

// AddNode starts one more stage node on the Env's store and NATS, with
// cluster settings cc (its NodeURL is set to its own address).
func (e *Env) AddNode(t testing.TB, cc stage.ClusterConfig) *Node {
	t.Helper()
	ln := listen(t)
	cc.NodeURL = "http://" + ln.Addr().String()
	if cc.RelaySigner == nil {
		cc.RelaySigner = e.signer
	}
	n := &stageNode{cfg: stage.Config{ICEIPs: []string{"127.0.0.1"}, Logger: e.logger, Cluster: &cc},
		verifier: e.verifier, store: e.Store, nc: e.NC}
	n.start(t, ln)
	return &Node{URL: cc.NodeURL, Server: n.sfu, node: n}
}

// Close stops the node: its peers leave and its HTTP server closes (its
// leases lapse on their own, as a dead node's do). Safe to call twice.
func (n *Node) Close() { n.node.stop() }

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func serveOn(t testing.TB, ln net.Listener, h http.Handler) {
	t.Helper()
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	})
}

// CreateStage creates a stage through the API.
func (e *Env) CreateStage(t testing.TB, name string) types.Stage {
	t.Helper()
	out, err := e.API.CreateStage(e.Ctx, &ivsrealtime.CreateStageInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return *out.Stage
}

// Token creates a participant token through the API. With no
// capabilities given, the token may publish and subscribe.
func (e *Env) Token(t testing.TB, stageARN, userID string, attrs map[string]string,
	caps ...types.ParticipantTokenCapability) types.ParticipantToken {
	t.Helper()
	in := &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stageARN), Attributes: attrs, Capabilities: caps}
	if userID != "" {
		in.UserId = aws.String(userID)
	}
	out, err := e.API.CreateParticipantToken(e.Ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return *out.ParticipantToken
}

// stageNode is one stage server serving the stage URL, as one run of a
// stage node process.
type stageNode struct {
	cfg      stage.Config
	verifier stage.Verifier
	store    *store.Store
	nc       *nats.Conn
	web      http.Handler

	sfu  *stage.Server
	addr string
	stop func()
}

// start serves a new stage server on ln; t.Cleanup stops it if stop has
// not.
func (n *stageNode) start(t testing.TB, ln net.Listener) {
	t.Helper()
	sfu, err := stage.New(n.cfg, n.verifier, n.store, n.nc)
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	hs := &http.Server{Handler: sfu.Handler(n.web), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	var once sync.Once
	n.sfu, n.addr = sfu, ln.Addr().String()
	n.stop = func() {
		once.Do(func() {
			sfu.Close() // before the HTTP server: peers leave first
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(ctx)
			<-done
		})
	}
	t.Cleanup(n.stop)
}

// RestartStage emulates the loss of the stage's node: the stage server is
// closed (every peer and events watcher disconnected) and its address
// refuses connections for down, then a new stage server on the same store
// serves the same URLs, as the node the stage moves to would. Env.Stage is
// the new server.
func (e *Env) RestartStage(t testing.TB, down time.Duration) {
	t.Helper()
	e.node.stop()
	time.Sleep(down) // the outage itself, not a wait for a condition
	ln, err := net.Listen("tcp", e.node.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", e.node.addr, err)
	}
	e.node.start(t, ln)
	e.Stage = e.node.sfu
}
