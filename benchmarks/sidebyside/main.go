// Command sidebyside measures `stagehand compose` against the FFmpeg CLI
// drawing the same layout from the same inputs with the same encoder
// settings, and against the codec floor (decoding the inputs alone plus
// encoding the composite alone), in one run on one machine: the contenders
// alternate within every pair, so load from elsewhere hits them alike.
//
// Cost is CPU-seconds (user+system of the child, every thread) per second of
// output, from the kernel's accounting; wall time and peak RSS come with it.
// It is run by `make bench`; it is never part of `make test`.
//
// Environment (or the matching flags): BENCH_PAIRS (5), BENCH_SECONDS (10),
// BENCH_LAYOUTS ("4,9"), BENCH_LAYERED ("9": layer-aware composites, the
// participants read as simulcast's 640x360 layer; "0" skips),
// BENCH_CONCURRENT (2; 0 skips), BENCH_DIR (out/bench), STAGEHAND
// (bin/stagehand).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
)

type settings struct {
	pairs, seconds, concurrent int
	layouts, layered           []int
	dir, stagehand             string
	baseline                   string // another stagehand binary run in every pair, e.g. the previous commit's
	printOnly                  bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := parseSettings(os.Args[1:])
	if err == nil {
		err = bench(ctx, s)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(1)
	}
}

func parseSettings(args []string) (settings, error) {
	fs := flag.NewFlagSet("sidebyside", flag.ContinueOnError)
	pairs := fs.Int("pairs", envInt("BENCH_PAIRS", 5), "alternating runs of each contender per composite")
	seconds := fs.Int("seconds", envInt("BENCH_SECONDS", 10), "length of the inputs and of the output, in seconds")
	concurrent := fs.Int("concurrent", envInt("BENCH_CONCURRENT", 2),
		"4-up composites to run at the same time for the capacity check (0 skips it)")
	layouts := fs.String("layouts", envStr("BENCH_LAYOUTS", "4,9"), "participant counts to compose, comma-separated")
	layered := fs.String("layered", envStr("BENCH_LAYERED", "9"),
		"participant counts to compose layer-aware (Stagehand reads simulcast's 640x360 layer; 0 skips)")
	dir := fs.String("dir", envStr("BENCH_DIR", "out/bench"), "working directory: cached inputs and outputs")
	bin := fs.String("stagehand", envStr("STAGEHAND", "bin/stagehand"), "the stagehand binary")
	baseline := fs.String("baseline", envStr("STAGEHAND_BASELINE", ""),
		"another stagehand binary (the previous commit's, say) to run in every pair; the summary compares the two")
	printOnly := fs.Bool("print", false, "print the commands every contender runs, and run nothing")
	if err := fs.Parse(args); err != nil {
		return settings{}, err
	}
	s := settings{pairs: *pairs, seconds: *seconds, concurrent: *concurrent, dir: *dir, stagehand: *bin,
		baseline: *baseline, printOnly: *printOnly}
	var err error
	if s.layouts, err = counts("layouts", *layouts); err != nil {
		return s, err
	}
	if *layered != "0" {
		if s.layered, err = counts("layered", *layered); err != nil {
			return s, err
		}
	}
	if s.pairs < 1 || s.seconds < 1 {
		return s, errors.New("pairs and seconds must be at least 1")
	}
	if s.stagehand, err = binary(s.stagehand); err != nil {
		return s, fmt.Errorf("stagehand binary: %w (run make build)", err)
	}
	if s.baseline != "" {
		if s.baseline, err = binary(s.baseline); err != nil {
			return s, fmt.Errorf("baseline binary: %w", err)
		}
	}
	return s, nil
}

// counts reads a comma-separated list of participant counts.
func counts(flag, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 12 {
			return nil, fmt.Errorf("%s: %q is not a participant count 1..12", flag, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// binary is the absolute path of an existing file.
func binary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	_, err = os.Stat(abs)
	return abs, err
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

func envStr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
