package worker

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stagehand-rt/stagehand/sink/upload"
)

// DefaultSpoolLimit bounds the segments waiting in a worker's spool for the
// object store: about 3 hours of one 6 Mbps composite.
const DefaultSpoolLimit = 8 << 30

// spool accounts for the segments that wait in the worker's spool, across
// its compositions. Past its limit a recording fails rather than fill the
// disk that the other compositions record to.
type spool struct {
	limit  int64
	bytes  atomic.Int64
	warned atomic.Bool
	log    *slog.Logger
}

func (s *spool) add(n int64) {
	b := s.bytes.Add(n)
	if b >= s.limit*8/10 && s.warned.CompareAndSwap(false, true) {
		s.log.Warn("the spool is nearly full: the object store has not taken recordings for a while; at the limit, "+
			"recordings fail",
			"spoolBytes", b, "limitBytes", s.limit)
	}
}

func (s *spool) done(n int64) {
	if b := s.bytes.Add(-n); b < s.limit*7/10 && s.warned.CompareAndSwap(true, false) {
		s.log.Info("the spool is draining", "spoolBytes", b, "limitBytes", s.limit)
	}
}

// admit refuses a new segment when the spool is full.
func (s *spool) admit() error {
	if b := s.bytes.Load(); b >= s.limit {
		return fmt.Errorf("the spool is full (%d of %d bytes waiting for the object store)", b, s.limit)
	}
	return nil
}

// recoverSpool uploads the finished segments an earlier process left in
// the spool (it was killed, or the object store was down when it
// stopped), so that a composition resumed elsewhere loses none of them:
// they are named in its playlist already (see resumePoint). A partial
// segment (.part) cannot be finished and is removed. It runs until done
// or ctx ends; what is not uploaded then stays for the next start.
func (w *Worker) recoverSpool(ctx context.Context) {
	if w.cfg.S3 == nil {
		return
	}
	byBucket, total := w.leftovers()
	if total == 0 {
		return
	}
	w.spool.add(total)
	w.log.Info("uploading segments an earlier run left in the spool", "bytes", total, "buckets", len(byBucket))
	client := upload.NewClient(*w.cfg.S3)
	var wg sync.WaitGroup
	for bucket, rels := range byBucket {
		wg.Go(func() {
			up, err := upload.Start(ctx, upload.Config{Client: client, Bucket: bucket,
				Dir: filepath.Join(w.cfg.SpoolDir, bucket),
				OnUploaded: func(u upload.Uploaded) {
					w.spool.done(u.Size)
					w.metrics.uploadDelay.Observe(u.Delay.Seconds())
				}})
			if err != nil {
				w.log.Error("recover spool", "bucket", bucket, "error", err)
				return
			}
			for _, r := range rels {
				up.Enqueue(r)
			}
			if err := up.Close(ctx); err != nil {
				w.log.Warn("spooled segments left for the next start", "bucket", bucket, "error", err)
				return
			}
			w.log.Info("spooled segments uploaded", "bucket", bucket, "segments", len(rels))
		})
	}
	wg.Wait()
}

// leftovers lists the finished segments in the spool by bucket, oldest
// first, and removes partial ones.
func (w *Worker) leftovers() (map[string][]string, int64) {
	type file struct {
		rel  string
		mod  time.Time
		size int64
	}
	found := map[string][]file{}
	var total int64
	_ = filepath.WalkDir(w.cfg.SpoolDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(w.cfg.SpoolDir, p)
		bucket, key, ok := strings.Cut(filepath.ToSlash(rel), "/")
		if !ok {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		switch {
		case strings.HasSuffix(p, ".part"): // an MPEG-TS or fMP4 segment
			w.log.Warn("removing a partial segment of a run that died", "file", p, "bytes", info.Size())
			_ = os.Remove(p)
		case strings.HasSuffix(p, ".ts"):
			found[bucket] = append(found[bucket], file{key, info.ModTime(), info.Size()})
			total += info.Size()
		}
		return nil
	})
	out := map[string][]string{}
	for b, fs := range found {
		slices.SortFunc(fs, func(x, y file) int { return x.mod.Compare(y.mod) })
		for _, f := range fs {
			out[b] = append(out[b], f.rel)
		}
	}
	return out, total
}
