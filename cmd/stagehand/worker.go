package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/stagehand-rt/stagehand/internal/natsserver"
	"github.com/stagehand-rt/stagehand/token/tokenservice"
	"github.com/stagehand-rt/stagehand/worker"
)

// workerConfig is `stagehand worker`: a composition worker on an existing
// NATS JetStream (a `serve --no-worker` or a cluster).
type workerConfig struct {
	NATSURL     string
	NATS        natsClientFlags
	Replicas    int
	DataDir     string
	Region      string
	AccountID   string
	Channels    map[string]string
	ICEIPs      []string
	Worker      workerFlags
	MetricsAddr string
	LogLevel    slog.Level
	// Drain is how long a worker told to stop lets its compositions run
	// before it hands them off.
	Drain time.Duration
}

func parseWorkerFlags(args []string, stderr io.Writer) (workerConfig, error) {
	c := workerConfig{Channels: map[string]string{}}
	fs := flag.NewFlagSet("stagehand worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.NATSURL, "nats-url", os.Getenv("STAGEHAND_NATS_URL"),
		"NATS (JetStream) URL(s) of the deployment, comma-separated (env STAGEHAND_NATS_URL)")
	c.NATS.register(fs)
	fs.IntVar(&c.Replicas, "replicas", 1, "replicas of the JetStream buckets and streams (as the deployment's serve/api)")
	fs.StringVar(&c.DataDir, "data-dir", "stagehand-worker", "directory for the spool and local recordings")
	// Kept so that existing command lines parse: control mints the
	// worker's tokens, in its own region and account.
	fs.StringVar(&c.Region, "region", envOr("STAGEHAND_REGION", "us-east-1"), "unused (control mints the tokens)")
	fs.StringVar(&c.AccountID, "account-id", envOr("STAGEHAND_ACCOUNT_ID", "123456789012"),
		"unused (control mints the tokens)")
	channelsFlag(fs, c.Channels)
	fs.Func("ice-ip", "local `IP` offered in ICE candidates (repeatable; default every interface)", func(v string) error {
		if net.ParseIP(v) == nil {
			return fmt.Errorf("%q is not an IP address", v)
		}
		c.ICEIPs = append(c.ICEIPs, v)
		return nil
	})
	c.Worker.register(fs)
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "127.0.0.1:9091",
		"where GET /metrics serves Prometheus metrics (empty: nowhere)")
	fs.DurationVar(&c.Drain, "drain-timeout", 0,
		"on SIGTERM, let running compositions go on this long before handing them off to other workers (0: hand off at once)")
	verbose := fs.Bool("v", false, "debug logging")
	const usage = "Usage: stagehand worker --nats-url URL [flags]\n\n" +
		"Runs compositions queued by the API of the deployment on that NATS JetStream."
	if err := parseFlags(fs, stderr, usage, args); err != nil {
		return c, err
	}
	if *verbose {
		c.LogLevel = slog.LevelDebug
	}
	errs := c.Worker.validate()
	if c.NATSURL == "" {
		errs = append(errs,
			errors.New("no --nats-url (or STAGEHAND_NATS_URL): a worker joins the deployment's NATS JetStream"))
	}
	if c.Replicas != 1 && c.Replicas != 3 {
		errs = append(errs, fmt.Errorf("--replicas %d: want 1 or 3", c.Replicas))
	}
	errs = append(errs, c.NATS.validate(c.NATSURL)...)
	return c, errors.Join(errs...)
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseWorkerFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	opts, err := cfg.NATS.options()
	if err != nil {
		return err
	}
	dep, err := openDeployment(ctx, dial{url: cfg.NATSURL, name: "stagehand-worker", opts: opts, worker: true},
		cfg.Replicas)
	if err != nil {
		return err
	}
	defer dep.close()
	// Control mints the worker's subscribe tokens: a worker has no signing key.
	tokens := tokenservice.Client{NC: dep.nc, Subject: natsserver.TokenSubject}
	w, err := worker.New(cfg.Worker.config(cfg.DataDir, cfg.Channels, cfg.ICEIPs, log), dep.store, dep.queue, tokens)
	if err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		stop, err := serveMetrics(cfg.MetricsAddr, w, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	fmt.Fprintf(stdout, "stagehand: worker on %s, recordings in %s\n", cfg.NATSURL, cfg.DataDir)
	// ctx ends on SIGTERM or SIGINT: drain, then hand off what still runs.
	var drain sync.WaitGroup
	defer drain.Wait()
	runCtx, handOff := context.WithCancel(context.WithoutCancel(ctx))
	defer handOff() // before drain.Wait
	drain.Go(func() { drainOnSignal(ctx, runCtx, w, cfg.Drain, handOff, log) })
	if err := w.Run(runCtx); err != nil {
		return err
	}
	handOff()
	fmt.Fprintln(stdout, "stagehand: worker stopped")
	return nil
}

// drainOnSignal drains w once ctx ends, then hands its compositions off
// after timeout or at a second signal; it returns when run ends.
func drainOnSignal(ctx, run context.Context, w *worker.Worker, timeout time.Duration, handOff func(),
	log *slog.Logger) {
	select {
	case <-ctx.Done():
	case <-run.Done():
		return
	}
	w.Drain()
	if timeout <= 0 {
		log.Info("stopping: handing running compositions off to other workers")
		handOff()
		return
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	log.Info("stopping: running compositions go on, then are handed off; signal again to hand them off now",
		"drainTimeout", timeout)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-t.C:
		log.Info("drain timeout: handing running compositions off")
	case <-again:
		log.Info("second signal: handing running compositions off")
	case <-run.Done():
		return
	}
	handOff()
}

// serveMetrics serves the worker's /metrics on addr until stop.
func serveMetrics(addr string, w *worker.Worker, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: %w", addr, err)
	}
	reg := newRegistry()
	reg.MustRegister(w.Collectors()...)
	hs := &http.Server{Handler: withMetrics(http.NotFoundHandler(), reg), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "error", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	}, nil
}
