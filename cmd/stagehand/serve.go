package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stagehand-rt/stagehand/api"
	"github.com/stagehand-rt/stagehand/console"
	"github.com/stagehand-rt/stagehand/internal/natsserver"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/recording"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/web"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token/tokenservice"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
	"github.com/stagehand-rt/stagehand/worker"
)

// Demo credentials `serve --dev` accepts when none are given; documented in
// the README for the AWS CLI examples.
const (
	devAccessKeyID     = "AKIASTAGEHANDDEV"
	devSecretAccessKey = "stagehand-dev-secret"
)

// serveConfig is everything `stagehand serve` needs, from flags and the
// environment.
type serveConfig struct {
	APIAddr   string
	DataDir   string
	NATSURL   string // external NATS; empty runs the embedded server
	NATSAddr  string // where the embedded server listens
	NATS      natsClientFlags
	Replicas  int
	Dev       bool
	NoAuth    bool
	AccessKey string
	SecretKey string
	Region    string
	AccountID string
	StageAddr string   // where the stage server (WHIP, WHEP, events) listens
	StageURL  string   // the stage cluster's public base URL; default NodeURL
	NodeURL   string   // this node's own public base URL; default http://<StageAddr>
	ICEIPs    []string // addresses ICE offers; default 127.0.0.1 for a loopback stage, else all
	// MaxSubscribers is each stage's quota of participants that only
	// subscribe.
	MaxSubscribers int
	// UDPAddr is the stage's one media port (ICE UDP mux); empty: a port
	// per peer.
	UDPAddr string
	// PublicAddr is what ICE candidates say instead of the local address.
	PublicAddr string
	// Role is the node's part in the stage cluster: any, origin or edge.
	Role      stage.Role
	Worker    workerFlags
	Ingest    ingestFlags
	HTTP      httpFlags
	NoWorker  bool // run no embedded worker (workers run as `stagehand worker`)
	Demo      bool // start a demo stage, participants and composition
	NoConsole bool // serve no console at /console/ on the stage address
	RTMPURL   string
	RTMPSURL  string
	Channels  map[string]string
	LogLevel  slog.Level
	// CPUProfile and MemProfile are pprof files written at the end (sizing
	// a node with `stagehand load`).
	CPUProfile, MemProfile string
	onListen               func(addr string) // tests learn the chosen port
}

func parseServeFlags(args []string, stderr io.Writer) (serveConfig, error) {
	c := serveConfig{Channels: map[string]string{}}
	fs := flag.NewFlagSet("stagehand serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.APIAddr, "api-addr", "127.0.0.1:8690", "address of the IVS Real-Time API (host:port)")
	fs.StringVar(&c.DataDir, "data-dir", "stagehand-data", "directory for the embedded NATS store and local recordings")
	fs.StringVar(&c.NATSURL, "nats-url", os.Getenv("STAGEHAND_NATS_URL"),
		"external NATS (JetStream) URL(s), comma-separated; empty runs an embedded server")
	fs.StringVar(&c.NATSAddr, "nats-addr", "127.0.0.1:4222", "address of the embedded NATS server (loopback)")
	c.NATS.register(fs)
	fs.IntVar(&c.Replicas, "replicas", 1, "replicas of the JetStream buckets and streams (3 on a 3-node cluster)")
	fs.Func("stage-role", "the node's part in the stage cluster: `any` (host stages and serve subscribers), "+
		"origin (host stages, send subscribers to other nodes) or edge (serve subscribers, relayed from the origins)",
		func(v string) (err error) {
			c.Role, err = stage.ParseRole(v)
			return err
		})
	fs.IntVar(&c.MaxSubscribers, "stage-max-subscribers", 10000,
		"participants that only subscribe, per stage (IVS's quota: 10,000; publishers: 12)")
	fs.BoolVar(&c.Dev, "dev", false, "local demo: accept the demo credentials when none are given")
	fs.BoolVar(&c.NoAuth, "no-auth", false, "accept unsigned API requests (only with --dev)")
	fs.StringVar(&c.AccessKey, "access-key-id", os.Getenv("STAGEHAND_ACCESS_KEY_ID"),
		"access key id API requests are signed with (env STAGEHAND_ACCESS_KEY_ID)")
	fs.StringVar(&c.SecretKey, "secret-access-key", os.Getenv("STAGEHAND_SECRET_ACCESS_KEY"),
		"its secret (env STAGEHAND_SECRET_ACCESS_KEY)")
	fs.StringVar(&c.Region, "region", envOr("STAGEHAND_REGION", "us-east-1"), "region in ARNs and request signatures")
	fs.StringVar(&c.AccountID, "account-id", envOr("STAGEHAND_ACCOUNT_ID", "123456789012"),
		"account id in ARNs (12 digits)")
	fs.StringVar(&c.StageAddr, "stage-addr", "127.0.0.1:8691",
		"address of the stage server: WHIP, WHEP, the events WebSocket and the web page (host:port)")
	fs.StringVar(&c.StageURL, "stage-url", os.Getenv("STAGEHAND_STAGE_URL"),
		"public base URL of the stage cluster as participants reach it, put in tokens: a load balancer over the "+
			"stage nodes, or any node (default: --node-url)")
	fs.StringVar(&c.NodeURL, "node-url", os.Getenv("STAGEHAND_NODE_URL"),
		"this stage node's own public base URL, where other nodes redirect the participants of the stages it "+
			"hosts (default http://<stage-addr>)")
	c.Worker.register(fs)
	c.Ingest.register(fs)
	c.HTTP.register(fs)
	fs.BoolVar(&c.Demo, "demo", false,
		"start a demo: a stage with two synthetic participants and a composition recording them into the local bucket")
	fs.BoolVar(&c.NoConsole, "no-console", false,
		"serve no operator console at /console/ on the stage address (it signs in with the API key pair)")
	fs.BoolVar(&c.NoWorker, "no-worker", false,
		"run no embedded composition worker (run `stagehand worker` processes instead)")
	fs.Func("ice-ip", "local `IP` the stage offers in ICE candidates (repeatable; default 127.0.0.1 when "+
		"--stage-addr is loopback, else every interface)", func(v string) error {
		if net.ParseIP(v) == nil {
			return fmt.Errorf("%q is not an IP address", v)
		}
		c.ICEIPs = append(c.ICEIPs, v)
		return nil
	})
	fs.StringVar(&c.UDPAddr, "stage-udp-addr", "",
		"one UDP `IP:port` for all WebRTC media, the only ICE candidate (what a firewall, container or "+
			"Kubernetes Service opens); default: a port per peer")
	fs.StringVar(&c.PublicAddr, "stage-public-addr", "",
		"`IP[:port]` the stage's ICE candidates give instead of the local one (1:1 NAT, a Kubernetes NodePort)")
	fs.StringVar(&c.RTMPURL, "rtmp-url", "rtmp://127.0.0.1:1935/app/", "public RTMP ingest URL of stages")
	fs.StringVar(&c.RTMPSURL, "rtmps-url", "rtmps://127.0.0.1:1936/app/", "public RTMPS ingest URL of stages")
	channelsFlag(fs, c.Channels)
	verbose := fs.Bool("v", false, "log every request")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a pprof CPU profile of the server to this `file`")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write a pprof allocation profile to this `file` at the end")
	const usage = "Usage: stagehand serve [flags]\n\n" +
		"Runs the IVS Real-Time API on an embedded NATS JetStream store (or an external NATS with " +
		"--nats-url)."
	if err := parseFlags(fs, stderr, usage, args); err != nil {
		return c, err
	}
	if *verbose {
		c.LogLevel = slog.LevelDebug
	}
	return c, c.validate()
}

func (c *serveConfig) validate() error {
	var errs []error
	if c.NoAuth && !c.Dev {
		errs = append(errs, errors.New("--no-auth is for local demos only: give --dev with it"))
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		errs = append(errs,
			errors.New("give both --access-key-id and --secret-access-key (or STAGEHAND_ACCESS_KEY_ID and "+
				"STAGEHAND_SECRET_ACCESS_KEY)"))
	}
	if c.AccessKey == "" && c.Dev {
		c.AccessKey, c.SecretKey = devAccessKeyID, devSecretAccessKey
	}
	if c.AccessKey == "" && !c.NoAuth {
		errs = append(errs,
			errors.New("no API credentials: set STAGEHAND_ACCESS_KEY_ID and STAGEHAND_SECRET_ACCESS_KEY (or the flags), or "+
				"run with --dev for the demo credentials"))
	}
	if len(c.AccountID) != 12 || strings.Trim(c.AccountID, "0123456789") != "" {
		errs = append(errs, fmt.Errorf("--account-id %q: want 12 digits", c.AccountID))
	}
	if c.Region == "" || strings.Trim(c.Region, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		errs = append(errs, fmt.Errorf("--region %q: want lower-case letters, digits and dashes", c.Region))
	}
	if c.Replicas != 1 && c.Replicas != 3 {
		errs = append(errs, fmt.Errorf("--replicas %d: want 1 or 3", c.Replicas))
	}
	if _, _, err := net.SplitHostPort(c.APIAddr); err != nil {
		errs = append(errs, fmt.Errorf("--api-addr %q: %w", c.APIAddr, err))
	}
	if host, _, err := net.SplitHostPort(c.StageAddr); err != nil {
		errs = append(errs, fmt.Errorf("--stage-addr %q: %w", c.StageAddr, err))
	} else if ip := net.ParseIP(host); c.ICEIPs == nil && ip != nil && ip.IsLoopback() {
		c.ICEIPs = []string{ip.String()}
	}
	errs = append(errs, c.Worker.validate()...)
	errs = append(errs, c.Ingest.validate()...)
	errs = append(errs, c.HTTP.validate(c)...)
	errs = append(errs, c.NATS.validate(c.NATSURL)...)
	for flag, u := range map[string]string{"--stage-url": c.StageURL, "--node-url": c.NodeURL} {
		if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("%s %q: want an http:// or https:// URL", flag, u))
		}
	}
	return errors.Join(errs...)
}

// endpoints are the stages' public endpoints; stageAddr is where the
// stage server listens, for when no --stage-url is given.
func (c *serveConfig) endpoints(stageAddr string) ivs.StageEndpoints {
	base := strings.TrimSuffix(c.StageURL, "/")
	if base == "" {
		base = c.nodeURL(stageAddr)
	}
	events := "ws" + strings.TrimPrefix(base, "http") + "/events"
	return ivs.StageEndpoints{Events: events, WHIP: base + "/whip", RTMP: c.RTMPURL, RTMPS: c.RTMPSURL}
}

func (c *serveConfig) nodeURL(stageAddr string) string {
	if c.NodeURL != "" {
		return strings.TrimSuffix(c.NodeURL, "/")
	}
	if c.HTTP.https() {
		return "https://" + stageAddr
	}
	return "http://" + stageAddr
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	stopProfiles, err := startProfiles(cfg.CPUProfile, cfg.MemProfile)
	if err != nil {
		return err
	}
	return errors.Join(serve(ctx, cfg, stdout, stderr), stopProfiles())
}

func serve(ctx context.Context, cfg serveConfig, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// Take the ports first: a busy port is the most common start failure.
	apiLn, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("API address %s: %w", cfg.APIAddr, err)
	}
	defer apiLn.Close()
	stageLn, err := net.Listen("tcp", cfg.StageAddr)
	if err != nil {
		return fmt.Errorf("stage address %s: %w", cfg.StageAddr, err)
	}
	defer stageLn.Close()
	tlsCfg, err := cfg.HTTP.tlsConfig(cfg.hosts(), cfg.DataDir, stdout)
	if err != nil {
		return err
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme, apiLn, stageLn = "https", tls.NewListener(apiLn, tlsCfg), tls.NewListener(stageLn, tlsCfg)
	}
	cfg.warnExposed(stdout, log)

	nd := dial{url: cfg.NATSURL, name: "stagehand-serve"}
	if nd.url == "" {
		ns, creds, err := startEmbeddedNATS(cfg, stdout)
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		nd.url = ns.ClientURL()
		if cfg.NATS.CredsFile == "" {
			cfg.NATS.CredsFile = creds
		}
	}
	if nd.opts, err = cfg.NATS.options(); err != nil {
		return err
	}
	dep, err := openDeployment(ctx, nd, cfg.Replicas)
	if err != nil {
		return err
	}
	defer dep.close()
	nc, st, queue := dep.nc, dep.store, dep.queue
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ns := ivs.Namespace{Region: cfg.Region, Account: cfg.AccountID}
	endpoints := cfg.endpoints(stageLn.Addr().String())
	srv, err := api.New(openCtx, api.Config{
		Namespace:   ns,
		Endpoints:   endpoints,
		Credentials: map[string]string{cfg.AccessKey: cfg.SecretKey},
		NoAuth:      cfg.NoAuth,
		Channels:    cfg.Channels,
		Logger:      log,
	}, st, queue, nc)
	if err != nil {
		return err
	}
	verifier, err := tokenstore.NewVerifier(openCtx, st, ns)
	if err != nil {
		return err
	}
	signer, err := tokenstore.LoadSigner(openCtx, st, ns)
	if err != nil {
		return err
	}
	minter := tokenservice.Minter{Store: st, Signer: signer}
	// Workers ask for their subscribe tokens here: they hold no signing key.
	tokenSub, err := tokenservice.Serve(nc, natsserver.TokenSubject, minter, log)
	if err != nil {
		return err
	}
	defer func() { _ = tokenSub.Unsubscribe() }()
	sfu, err := stage.New(stage.Config{ICEIPs: cfg.ICEIPs, Logger: log, MaxSubscribers: cfg.MaxSubscribers,
		UDPAddr: cfg.UDPAddr, PublicAddr: cfg.PublicAddr,
		OnPublishStarted: recording.NewDispatcher(st, queue, log).Hook(),
		Cluster: &stage.ClusterConfig{NodeURL: cfg.nodeURL(stageLn.Addr().String()), Role: cfg.Role,
			RelaySigner: signer}}, verifier, st, nc)
	if err != nil {
		return err
	}
	defer sfu.Close()
	// This process hosts every stage: sessions open in the store are left
	// over from a run that died.
	if _, err := sfu.EndStaleSessions(openCtx); err != nil {
		return err
	}
	// Jobs that ran out of attempts (their workers died) end FAILED.
	reapCtx, stopReaping := context.WithCancel(ctx)
	var reaper sync.WaitGroup
	reaper.Go(func() { worker.Reap(reapCtx, st, queue, 30*time.Second, log) })
	defer reaper.Wait()
	defer stopReaping()
	reg := newRegistry()
	reg.MustRegister(srv.Collectors()...)
	reg.MustRegister(sfu.Collector())
	stopIngest, err := startIngest(openCtx, cfg, st, sfu, reg, stdout, log)
	if err != nil {
		return err
	}
	defer stopIngest()
	stopWorker, local, err := startWorker(ctx, cfg, st, queue, minter, reg, log)
	if err != nil {
		return err
	}
	defer stopWorker()
	// --no-auth spares the console's sign-in only where it spares the
	// API's signatures: on loopback (the stage address may be public).
	con := console.New(console.Config{API: srv, Credentials: map[string]string{cfg.AccessKey: cfg.SecretKey},
		NoAuth: cfg.NoAuth && loopback(cfg.StageAddr), Secure: tlsCfg != nil, BucketsDir: cfg.bucketsDir(),
		S3: cfg.recordingsS3(), Logger: log,
		Fleet: &console.Fleet{Store: st, Queue: queue, Nodes: sfu.Nodes, Metrics: reg,
			LocalWorker: local.ID(), LocalCapacity: local.Capacity()}})
	fmt.Fprintf(stdout, "stagehand: IVS Real-Time API at %s://%s (region %s, account %s)\n", scheme, apiLn.Addr(),
		cfg.Region, cfg.AccountID)
	fmt.Fprintf(stdout, "stagehand: stage node %s at %s (WHIP %s, events %s); join from a browser at %s/\n",
		sfu.NodeID(), stageLn.Addr(), endpoints.WHIP, endpoints.Events, strings.TrimSuffix(endpoints.WHIP, "/whip"))
	var pages http.Handler = web.Handler()
	if !cfg.NoConsole {
		pages = con.Handler(pages)
		fmt.Fprintf(stdout, "stagehand: console at %s/console/ (sign in with the API key pair)\n",
			cfg.nodeURL(stageLn.Addr().String()))
	}
	var d *demo
	hooks := serveHooks{
		started: func() error {
			if !cfg.Demo {
				return nil
			}
			var err error
			d, err = startDemo(ctx, cfg, scheme+"://"+apiLn.Addr().String(), stdout, log)
			return err
		},
		stopping: func() {
			if d != nil {
				d.stop()
			}
			drainStage(sfu, log)
		},
	}
	guard := cfg.hostGuard()
	ls := []listener{{"API", apiLn, guard.Handler(srv)},
		// The stage's WHIP/WHEP requests wait for ICE gathering; events
		// WebSockets stay open, so no write timeout there.
		{"stage", stageLn, guard.Handler(sfu.Handler(pages))}}
	if ls, err = withMetricsListener(ls, cfg.HTTP.MetricsAddr, reg, cfg.HTTP.Pprof); err != nil {
		return err
	}
	return serveHTTP(ctx, cfg, stdout, log, hooks, ls...)
}

// startEmbeddedNATS runs the single-node NATS on loopback, with users whose
// passwords it writes once into the data directory (mode 0600): serve logs
// in as control, and `stagehand worker`s of this machine with worker.creds.
// It returns the server and control's credentials file.
func startEmbeddedNATS(cfg serveConfig, stdout io.Writer) (*natsserver.Server, string, error) {
	dir := filepath.Join(cfg.DataDir, "nats-secrets")
	if _, err := writeSecrets(dir, nil); err != nil {
		return nil, "", err
	}
	users, err := readUsers(filepath.Join(dir, natsDir, usersFile))
	if err != nil {
		return nil, "", err
	}
	ns, err := natsserver.Start(natsserver.Config{Addr: cfg.NATSAddr, StoreDir: filepath.Join(cfg.DataDir, "nats"),
		Users: users})
	if err != nil {
		return nil, "", err
	}
	fmt.Fprintf(stdout, "stagehand: embedded NATS JetStream at %s, data in %s; workers log in with --nats-creds %s\n",
		ns.ClientURL(), cfg.DataDir, credsFile(dir, natsserver.RoleWorker))
	return ns, credsFile(dir, natsserver.RoleControl), nil
}

// drainGrace is how long a draining stage node keeps answering after it
// handed its stages over: participants reconnecting through the cluster's
// address may still reach it, and it redirects them.
const drainGrace = time.Second

// drainStage hands the node's stages to the other nodes of the cluster.
func drainStage(sfu *stage.Server, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	sfu.Drain(ctx)
	log.Info("stage node drained: its participants reconnect to other nodes", "took", time.Since(start))
	time.Sleep(drainGrace)
}

// bucketsDir is where the embedded worker records S3 destinations when no
// S3 server is given: the console plays recordings from there.
func (c *serveConfig) bucketsDir() string {
	if c.Worker.S3.Endpoint != "" || c.Worker.S3.AccessKey != "" {
		return ""
	}
	return filepath.Join(c.DataDir, "buckets")
}

// recordingsS3 is the S3 server workers upload recordings to, for the
// console to play them from; nil when they record into the local buckets.
func (c *serveConfig) recordingsS3() *s3.Client {
	if c.bucketsDir() != "" {
		return nil
	}
	return upload.NewClient(c.Worker.S3)
}

// localWorker is what the console shows of the embedded worker; the zero
// value when there is none.
type localWorker struct{ w *worker.Worker }

func (l localWorker) ID() string {
	if l.w == nil {
		return ""
	}
	return l.w.ID()
}

func (l localWorker) Capacity() int {
	if l.w == nil {
		return 0
	}
	return l.w.Capacity()
}

// startWorker runs the embedded composition worker until the returned
// stop is called.
func startWorker(ctx context.Context, cfg serveConfig, st *store.Store, q *jobs.Queue, tokens worker.Tokens,
	reg *prometheus.Registry, log *slog.Logger) (stop func(), local localWorker, err error) {
	if cfg.NoWorker {
		return func() {}, local, nil
	}
	wcfg := cfg.Worker.config(cfg.DataDir, cfg.Channels, cfg.ICEIPs, log)
	if wcfg.StageCAFile == "" {
		wcfg.StageCAFile = cfg.certFile() // the embedded worker trusts serve's own certificate
	}
	w, err := worker.New(wcfg, st, q, tokens)
	if err != nil {
		return nil, local, err
	}
	reg.MustRegister(w.Collectors()...)
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(wctx); err != nil {
			log.Error("worker", "error", err)
		}
	}()
	return func() { cancel(); <-done }, localWorker{w}, nil
}

type listener struct {
	name string
	ln   net.Listener
	h    http.Handler
}

// serveHooks run once the servers listen, and before they shut down.
type serveHooks struct {
	started  func() error
	stopping func()
}

func serveHTTP(ctx context.Context, cfg serveConfig, stdout io.Writer, log *slog.Logger, hooks serveHooks,
	ls ...listener) error {
	switch {
	case cfg.NoAuth:
		fmt.Fprintln(stdout, "stagehand: authentication is OFF (--no-auth): unsigned requests are accepted")
	case cfg.AccessKey == devAccessKeyID:
		fmt.Fprintf(stdout, "stagehand: demo credentials: AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", devAccessKeyID,
			devSecretAccessKey)
	}
	errc := make(chan error, len(ls))
	servers := make([]*http.Server, len(ls))
	for i, l := range ls {
		hs := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		if l.name == "API" {
			hs.WriteTimeout = 30 * time.Second
		}
		servers[i] = hs
		go func() {
			if err := hs.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", l.name, err)
				return
			}
			errc <- nil
		}()
	}
	if cfg.onListen != nil {
		cfg.onListen(ls[0].ln.Addr().String())
	}
	err := hooks.started()
	if err == nil {
		select {
		case err = <-errc:
		case <-ctx.Done():
		}
	}
	hooks.stopping()
	// Longer than net/http's 5 s for a connection that never sent a request
	// (a client's spare dial, common over TLS), which Shutdown waits for.
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, hs := range servers {
		if serr := hs.Shutdown(shutCtx); serr != nil && err == nil {
			err = fmt.Errorf("shutdown: %w", serr)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "stagehand: stopped")
	return nil
}
