// Package recordingcheck is what the fleet tests (processes, containers)
// check of a composite recording in an object store: every segment a
// playlist ever listed is still listed and stored at the end, numbers
// increase, one discontinuity per resume, the playlist is ended.
package recordingcheck

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// Recording is one rendition of a recording in a bucket.
type Recording struct {
	S3        *s3.Client
	Bucket    string
	Prefix    string // the destination's recordingPrefix
	Rendition string // "180p30"
	// seen is every segment the playlist ever listed, or a run spooled.
	seen map[int]bool
}

// Key is the object key of rel ("playlist.m3u8", "3.ts") in the rendition.
func (r *Recording) Key(rel string) string {
	return r.Prefix + "/media/hls/" + r.Rendition + "/" + rel
}

// Playlist reads the stored playlist: its segments and text; none while
// it is not stored yet.
func (r *Recording) Playlist(t testing.TB) ([]ivsrec.Segment, string) {
	t.Helper()
	b, err := upload.Get(context.Background(), r.S3, r.Bucket, r.Key("playlist.m3u8"))
	if err != nil {
		return nil, ""
	}
	segs, err := ivsrec.ReadPlaylist(b)
	if err != nil {
		t.Fatalf("stored playlist: %v\n%s", err, b)
	}
	return segs, string(b)
}

// Stored lists the segment numbers stored in the rendition.
func (r *Recording) Stored(t testing.TB) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	list, err := r.S3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(r.Bucket),
		Prefix: aws.String(r.Key(""))})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		name := (*o.Key)[strings.LastIndex(*o.Key, "/")+1:]
		if n, err := strconv.Atoi(strings.TrimSuffix(name, ".ts")); err == nil && strings.HasSuffix(name, ".ts") {
			out[n] = true
		}
	}
	return out
}

// Observe reads the playlist, remembers its segments, and returns how many
// it lists.
func (r *Recording) Observe(t testing.TB) int {
	t.Helper()
	segs, _ := r.Playlist(t)
	for _, s := range segs {
		r.Saw(s.Index)
	}
	return len(segs)
}

// Saw remembers segment n (listed, or spooled by a run) as one the final
// playlist must list.
func (r *Recording) Saw(n int) {
	if r.seen == nil {
		r.seen = map[int]bool{}
	}
	r.seen[n] = true
}

// WaitSegments waits until the playlist lists n segments and returns how
// many it lists.
func (r *Recording) WaitSegments(t testing.TB, n int, within time.Duration) (got int) {
	t.Helper()
	testkit.WaitFor(t, within, 200*time.Millisecond, func() error {
		if got = r.Observe(t); got < n {
			return fmt.Errorf("%d segments stored, want %d", got, n)
		}
		return nil
	})
	return got
}

// Result is what Check found.
type Result struct {
	Segments        []ivsrec.Segment
	Text            string // the final playlist
	Discontinuities int
	Lost            int // listed but not stored, or seen and no longer listed
}

// Check checks the final playlist after resumes runs were resumed, failing
// t for each segment lost.
func (r *Recording) Check(t testing.TB, resumes int) Result {
	t.Helper()
	segs, text := r.Playlist(t)
	stored := r.Stored(t)
	res := Result{Segments: segs, Text: text}
	listed := map[int]bool{}
	for i, s := range segs {
		if i > 0 && s.Index <= segs[i-1].Index {
			t.Errorf("segment numbers not increasing: %d after %d", s.Index, segs[i-1].Index)
		}
		listed[s.Index] = true
		if !stored[s.Index] {
			res.Lost++
			t.Errorf("segment %d.ts listed but not stored", s.Index)
		}
		if s.Discontinuity {
			res.Discontinuities++
		}
	}
	var missing []int
	for n := range r.seen {
		if !listed[n] {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	res.Lost += len(missing)
	if len(missing) > 0 {
		t.Errorf("segments listed or spooled during the run but not in the final playlist: %v", missing)
	}
	if res.Discontinuities != resumes {
		t.Errorf("%d discontinuities for %d resumes:\n%s", res.Discontinuities, resumes, text)
	}
	if !strings.Contains(text, "#EXT-X-ENDLIST") {
		t.Errorf("final playlist not ended:\n%s", text)
	}
	return res
}
