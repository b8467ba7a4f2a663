// Command stagehand is the single binary of Stagehand, an open-source
// reimplementation of Amazon IVS Real-Time composition. Sub-commands wire the
// packages together; no business logic lives here.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/asticode/go-astiav"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `stagehand: server-side composition for real-time video (IVS Real-Time compatible)

Usage:
  stagehand serve [flags]            run the IVS Real-Time API and the stage (embedded NATS JetStream store)
  stagehand publish --token T        join a stage over WHIP with a test pattern and a tone
  stagehand worker --nats-url URL    run compositions for a deployment (serve --no-worker, fleets)
  stagehand nats --routes URLS       run one node of a fleet's NATS JetStream cluster
  stagehand nats-secrets --dir DIR   write a fleet's NATS users, credentials and development certificates
  stagehand health URL               exit 0 if URL answers 2xx (container health checks)
  stagehand layout preview [flags]   draw a layout with labelled tiles into a PNG
  stagehand compose [flags]          compose media files to RTMP(S), S3 and/or local HLS
  stagehand load --endpoint-url URL  size a stage node: synthetic publishers and subscribers, a report
  stagehand version                  print the version

Run "stagehand <command> -h" for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stagehand:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, nil)))
	// FFmpeg's own chatter (encoder statistics, option dumps) is not for
	// users; its errors are, and they reach them through returned errors too.
	astiav.SetLogLevel(astiav.LogLevelError)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "layout":
		if len(args) < 2 || args[1] != "preview" {
			fmt.Fprint(stderr, usage)
			return errors.New(`unknown layout command: want "layout preview"`)
		}
		return runPreview(ctx, args[2:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "compose":
		return runCompose(ctx, args[1:], stdout, stderr)
	case "publish":
		return runPublish(ctx, args[1:], stdout, stderr)
	case "worker":
		return runWorker(ctx, args[1:], stdout, stderr)
	case "load":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "nats":
		return runNATS(ctx, args[1:], stdout, stderr)
	case "nats-secrets":
		return runNATSSecrets(ctx, args[1:], stdout, stderr)
	case "health":
		return runHealth(ctx, args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "stagehand", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// parseFlags parses a sub-command's args with fs, whose -h prints usage
// then the flags; positional arguments are refused.
func parseFlags(fs *flag.FlagSet, stderr io.Writer, usage string, args []string) error {
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
