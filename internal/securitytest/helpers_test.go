//go:build security

package securitytest

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/token/tokenservice"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
	"github.com/stagehand-rt/stagehand/worker"
)

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runWorker runs a worker in this process until the test ends.
func runWorker(t *testing.T, env *stagetest.Env, cfg worker.Config) {
	t.Helper()
	signer, err := tokenstore.LoadSigner(env.Ctx, env.Store,
		ivs.Namespace{Region: stagetest.Region, Account: stagetest.Account})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ICEIPs = stagetest.Loopback.ICEIPs
	w, err := worker.New(cfg, env.Store, env.Queue, tokenservice.Minter{Store: env.Store, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(env.Ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// files lists the regular files (and symlinks) under root.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return nil // nothing yet
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
