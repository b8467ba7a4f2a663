package console

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// TestRecordingsFromS3: with workers uploading to S3, the console finds a
// composition's recording there and proxies its files to a session.
func TestRecordingsFromS3(t *testing.T) {
	srv := testserver.StartS3(t)
	client := upload.NewClient(upload.ClientConfig{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey, PathStyle: true})
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("recs")}); err != nil {
		t.Fatal(err)
	}
	prefix := "st/c/d1/composite/"
	for key, data := range map[string]string{
		"media/hls/multivariant.m3u8":             "#EXTM3U\n",
		"media/hls/720p30/playlist.m3u8":          "#EXTM3U\n#EXTINF:2,\n0.ts\n",
		"media/hls/720p30/0.ts":                   "12345",
		"media/hls/720p30/1.ts":                   "123",
		"media/latest_thumbnail/720p30/thumb.jpg": "jpeg",
		"events/recording-started.json":           "{}",
	} {
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("recs"), Key: aws.String(prefix + key),
			Body: bytes.NewReader([]byte(data))}); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, func(c *Config) { c.S3 = client })
	id := e.signIn(t)
	e.api.out["GetComposition"] = `{"composition":{"arn":"arn:c","destinations":[{"id":"d1","state":"ACTIVE",
		"configuration":{"s3":{"storageConfigurationArn":"arn:s"}},"detail":{"s3":{"recordingPrefix":"st/c/d1/composite"}}}]}}`
	e.api.out["GetStorageConfiguration"] = `{"storageConfiguration":{"arn":"arn:s","s3":{"bucketName":"recs"}}}`
	w := e.do(t, req{method: "GET", path: "/console/api/recordings?arn=arn:c", cookie: id})
	want := `{"recordings":[{"destination":"d1","bucket":"recs","prefix":"st/c/d1/composite",` +
		`"playlist":"/console/rec/recs/st/c/d1/composite/media/hls/multivariant.m3u8",` +
		`"thumbnail":"/console/rec/recs/st/c/d1/composite/media/latest_thumbnail/720p30/thumb.jpg",` +
		`"renditions":[{"name":"720p30","segments":2,"bytes":8}],"source":"s3"}]}`
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != want {
		t.Errorf("%d %s\nwant %s", w.Code, w.Body, want)
	}
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/console/rec/recs/" + prefix + "media/hls/720p30/playlist.m3u8", "#EXTM3U\n#EXTINF:2,\n0.ts\n", 200},
		{"/console/rec/recs/" + prefix + "media/hls/720p30/0.ts", "12345", 200},
		{"/console/rec/recs/" + prefix + "media/hls/720p30/7.ts", "", 404},
		{"/console/rec/recs/st/c/..%2fc/d1/composite/media/hls/720p30/0.ts", "", 400},
		{"/console/rec/recs/" + prefix + "events/recording-started.json", "", 404}, // not a media file
	} {
		w := e.do(t, req{method: "GET", path: tc.path, cookie: id, noHeader: true})
		if w.Code != tc.status || tc.status == 200 && w.Body.String() != tc.body {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, w.Code, w.Body, tc.status, tc.body)
		}
	}
	if w := e.do(t, req{method: "GET", path: "/console/rec/recs/" + prefix + "media/hls/720p30/0.ts", noHeader: true}); w.Code != 401 {
		t.Errorf("an S3 file without a session: %d", w.Code)
	}
}
