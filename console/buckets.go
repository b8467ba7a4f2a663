package console

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stagehand-rt/stagehand/internal/safepath"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// buckets is where recordings are read from: the local buckets the
// embedded worker writes, or the S3 server workers upload to.
type buckets interface {
	// list returns the objects under prefix (keys relative to it), at
	// most maxObjects.
	list(ctx context.Context, bucket, prefix string) ([]object, error)
	// serve writes one object to w.
	serve(w http.ResponseWriter, r *http.Request, bucket, key, ctype string)
	kind() string
}

type object struct {
	key  string // relative to the listed prefix, slash-separated
	size int64
}

// maxObjects bounds a listing: a recording of a day in 2 s segments is
// 43,200 of them.
const maxObjects = 100_000

// localBuckets are <dir>/<bucket>/<key>, every path joined through safepath.
type localBuckets struct{ dir string }

func (l localBuckets) kind() string { return "local" }

func (l localBuckets) list(_ context.Context, bucket, prefix string) ([]object, error) {
	root, err := safepath.Join(l.dir, bucket, prefix)
	if err != nil {
		return nil, err
	}
	var out []object
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // never followed: safepath refuses them when serving too
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, object{key: filepath.ToSlash(rel), size: info.Size()})
		if len(out) >= maxObjects {
			return fs.SkipAll
		}
		return nil
	})
	return out, err
}

func (l localBuckets) serve(w http.ResponseWriter, r *http.Request, bucket, key, ctype string) {
	p, err := safepath.Join(l.dir, bucket, key)
	if err != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		http.Error(w, "unreadable", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.IsDir() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	http.ServeContent(w, r, "", info.ModTime(), f)
}

// s3Buckets proxies the S3 server: the browser never holds S3 keys or
// presigned URLs, and reaches only what a session may read.
type s3Buckets struct{ client *s3.Client }

func (s s3Buckets) kind() string { return "s3" }

func (s s3Buckets) list(ctx context.Context, bucket, prefix string) ([]object, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	base := strings.TrimSuffix(prefix, "/") + "/"
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket),
		Prefix: aws.String(base)})
	var out []object
	for p.HasMorePages() && len(out) < maxObjects {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, err
		}
		for _, o := range page.Contents {
			out = append(out, object{key: strings.TrimPrefix(aws.ToString(o.Key), base), size: aws.ToInt64(o.Size)})
		}
	}
	return out, nil
}

func (s s3Buckets) serve(w http.ResponseWriter, r *http.Request, bucket, key, ctype string) {
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	if path.Clean("/"+key) != "/"+key {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	b, err := upload.Get(ctx, s.client, bucket, key)
	if errors.Is(err, upload.ErrNoObject) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		http.Error(w, "the object store did not answer", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", ctype)
	_, _ = w.Write(b)
}
