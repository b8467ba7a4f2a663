package upload_test

import (
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/grafov/m3u8"

	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

const prefix = "stage1234567/comp12345678/dest12345678/composite"

func listKeys(t *testing.T, c *s3.Client, bucket string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
	}
	return keys
}

func getObject(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecordingSurvivesObjectStoreOutage records 8 s of HLS while the S3
// server is down for part of it: every segment and the final playlists end
// up in the bucket under the IVS composite prefix, in order, nothing lost.
func TestRecordingSurvivesObjectStoreOutage(t *testing.T) {
	srv := testserver.StartS3(t)
	client := upload.NewClient(upload.ClientConfig{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true})
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("recordings")}); err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	var mu sync.Mutex
	delays := map[string]time.Duration{}
	up, err := upload.Start(ctx, upload.Config{Client: client, Bucket: "recordings", Prefix: prefix, Dir: spool, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnUploaded: func(u upload.Uploaded) {
			mu.Lock()
			delays[u.Rel] = max(delays[u.Rel], u.Delay)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	m := testmedia.New(t, testmedia.Options{Seconds: 8, KeyframeInterval: 60})
	var stopped, restarted time.Time
	rec, err := ivsrec.New(ivsrec.Config{Dir: spool, Rendition: "180p30-Enc123456789", SegmentSeconds: 2, Framerate: 30, Bandwidth: 600_000,
		Video: ivsrec.Stream{Params: m.Video, TimeBase: m.VideoTimeBase}, Audio: &ivsrec.Stream{Params: m.Audio, TimeBase: m.AudioTimeBase},
		OnFile: up.Enqueue})
	if err != nil {
		t.Fatal(err)
	}
	m.Run(t, func(p *astiav.Packet, stream int) {
		if err := rec.Write(ctx, p, stream); err != nil {
			t.Fatal(err)
		}
	}, func(i int) {
		time.Sleep(5 * time.Millisecond) // 8 s of media in about 1.2 s: the outage spans segments
		switch i {
		case 50:
			srv.Stop()
			stopped = time.Now()
		case 170:
			srv.Start()
			restarted = time.Now()
		}
	})
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := up.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	st := up.Stats()
	if st.Failures == 0 {
		t.Errorf("no upload failed: the outage did not overlap the recording (%+v)", st)
	}
	// Delay tells how far the bucket fell behind: the segment finished
	// first in the outage waited for most of it.
	outage := restarted.Sub(stopped)
	mu.Lock()
	longest := slices.Max(slices.Collect(maps.Values(delays)))
	d0 := delays["media/hls/180p30-Enc123456789/0.ts"]
	mu.Unlock()
	if longest < outage/2 || longest > outage+10*time.Second {
		t.Errorf("longest upload delay %v for an outage of %v", longest, outage)
	}
	t.Logf("outage %v: longest upload delay %v; segment 0 %v", outage.Round(time.Millisecond), longest.Round(time.Millisecond), d0.Round(time.Millisecond))
	keys := listKeys(t, client, "recordings")
	media := prefix + "/media/hls/180p30-Enc123456789/"
	want := []string{prefix + "/media/hls/multivariant.m3u8", media + "playlist.m3u8", prefix + "/events/recording-started.json", prefix + "/events/recording-ended.json"}
	for i := 0; i < 4; i++ {
		want = append(want, media+string(rune('0'+i))+".ts")
	}
	for _, k := range want {
		if !slices.Contains(keys, k) {
			t.Errorf("bucket lacks %s (has %v)", k, keys)
		}
	}
	// The stored playlist is the final one and names exactly the stored segments.
	pl := getObject(t, client, "recordings", media+"playlist.m3u8")
	local, err := os.ReadFile(filepath.Join(spool, "media", "hls", "180p30-Enc123456789", "playlist.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pl, local) || !strings.Contains(string(pl), "#EXT-X-ENDLIST") {
		t.Errorf("stored playlist differs from the final one:\n%s", pl)
	}
	p, _, err := m3u8.DecodeFrom(bytes.NewReader(pl), true)
	if err != nil {
		t.Fatal(err)
	}
	mp := p.(*m3u8.MediaPlaylist)
	for _, seg := range mp.Segments[:mp.Count()] {
		body := getObject(t, client, "recordings", media+seg.URI)
		if len(body) == 0 || body[0] != 0x47 {
			t.Errorf("segment %s is not MPEG-TS (%d bytes)", seg.URI, len(body))
		}
	}
	if segs, _ := filepath.Glob(filepath.Join(spool, "media", "hls", "*", "*.ts")); len(segs) != 0 {
		t.Errorf("uploaded segments still in the spool: %v", segs)
	}
}

// TestCloseKeepsWhatItCannotUpload stops the store for good: Close gives up
// at its deadline, says what it kept, and the files stay in the spool.
func TestCloseKeepsWhatItCannotUpload(t *testing.T) {
	srv := testserver.StartS3(t)
	srv.Stop()
	client := upload.NewClient(upload.ClientConfig{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true})
	spool := t.TempDir()
	if err := os.WriteFile(filepath.Join(spool, "0.ts"), []byte{0x47, 1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	up, err := upload.Start(context.Background(), upload.Config{Client: client, Bucket: "recordings", Dir: spool, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	up.Enqueue("0.ts")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = up.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 files not uploaded") {
		t.Fatalf("Close: %v, want it to report the file it kept", err)
	}
	if _, err := os.Stat(filepath.Join(spool, "0.ts")); err != nil {
		t.Errorf("the unuploaded segment left the spool: %v", err)
	}
}
