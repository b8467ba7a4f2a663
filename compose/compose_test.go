package compose

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testmedia"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/layout"
	"github.com/stagehand-rt/stagehand/sink/upload"
)

// makeInput writes a VP8/Opus WebM of a solid colour and a tone with
// Debian's ffmpeg, as a browser participant would send them.
func makeInput(t *testing.T, dir, color string, hz int, seconds float64) string {
	t.Helper()
	out := filepath.Join(dir, color+".webm")
	d := strings.TrimRight(strings.TrimRight(strconvF(seconds), "0"), ".")
	cmd := exec.Command("ffmpeg", "-v", "error", "-y",
		"-f", "lavfi", "-i", "color=c="+color+":s=320x180:r=30:d="+d,
		"-f", "lavfi", "-i", "sine=f="+strconvI(hz)+":d="+d+":sample_rate=48000",
		"-c:v", "libvpx", "-b:v", "300k", "-c:a", "libopus", "-shortest", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// rgbAt decodes the frame at second `at` of a recording and returns the
// colour of pixel (x, y).
func rgbAt(t *testing.T, file string, at float64, w, h, x, y int) [3]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", strconvF(at), "-i", file, "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) < w*h*3 {
		t.Fatalf("decode frame of %s: %v (%d bytes)", file, err, len(out))
	}
	i := (y*w + x) * 3
	return [3]byte{out[i], out[i+1], out[i+2]}
}

// TestComposeFourInputsToAllDestinations is the end-to-end run of the file
// mode: four VP8/Opus participants composed in a 2x2 grid, sent at once to
// nginx over rtmps://, to the S3 server as HLS, and to a local HLS directory.
func TestComposeFourInputsToAllDestinations(t *testing.T) {
	dir := t.TempDir()
	colors := []string{"red", "lime", "blue", "yellow"}
	want := [][3]byte{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}}
	var inputs []Input
	for i, c := range colors {
		inputs = append(inputs, Input{Path: makeInput(t, dir, c, 440+110*i, 3)})
	}
	rtmpSrv := testserver.StartRTMP(t)
	s3Srv := testserver.StartS3(t)
	clientCfg := upload.ClientConfig{Endpoint: s3Srv.Endpoint, AccessKey: s3Srv.AccessKey, SecretKey: s3Srv.SecretKey, PathStyle: true}
	client := upload.NewClient(clientCfg)
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("recordings")}); err != nil {
		t.Fatal(err)
	}
	const prefix = "stage1234567/comp12345678/dest12345678/composite"
	hlsDir := filepath.Join(dir, "hls")
	var progress []Progress
	res, err := Run(context.Background(), Config{
		Inputs:         inputs,
		Video:          encoder.VideoConfig{Width: 640, Height: 360, Framerate: 30, Bitrate: 1_000_000},
		SegmentSeconds: 2,
		RTMPURL:        rtmpSrv.TLSURL("composite"), RTMPCA: rtmpSrv.CAFile,
		HLSDir:   hlsDir,
		S3:       &S3{Client: clientCfg, Bucket: "recordings", Prefix: prefix},
		Progress: func(p Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatalf("Run: %v (%+v)", err, res)
	}
	if res.Frames < 89 || res.Frames > 91 || len(progress) < 2 {
		t.Errorf("%d frames, %d progress reports; want 3 s at 30 fps reported each second", res.Frames, len(progress))
	}
	for _, d := range res.Destinations {
		if d.State != "STOPPED" || d.Dropped != 0 || d.Packets == 0 {
			t.Errorf("destination %+v: want STOPPED with every packet", d)
		}
	}

	// The 2x2 grid: each participant's colour at its tile's centre.
	ps := make([]layout.Participant, 4)
	for i := range ps {
		ps[i] = layout.Participant{ID: "P" + strconvI(i+1), Video: layout.Size{W: 320, H: 180}}
	}
	geom, err := layout.Compute(layout.Size{W: 640, H: 360}, ps, layout.Config{})
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(hlsDir, "media", "hls", "multivariant.m3u8")
	for i, tile := range geom.Tiles {
		got := rgbAt(t, local, 1.5, 640, 360, tile.Tile.X+tile.Tile.W/2, tile.Tile.Y+tile.Tile.H/2)
		for c := 0; c < 3; c++ {
			if math.Abs(float64(got[c])-float64(want[i][c])) > 40 {
				t.Errorf("tile %d centre is %v, want %s %v", i, got, colors[i], want[i])
				break
			}
		}
	}
	p := testmedia.FFprobe(t, "-show_entries", "format=duration:stream=codec_name,width,height,r_frame_rate", local)
	if d := p.Duration(t); math.Abs(d-3) > 0.2 || !slices.Contains(p.Codecs(), "h264") || !slices.Contains(p.Codecs(), "aac") {
		t.Errorf("local HLS: %.2f s of %v, want 3 s of h264+aac", d, p.Codecs())
	}
	for _, s := range p.Streams {
		if s.CodecName == "h264" && (s.Width != 640 || s.Height != 360 || s.FrameRate != "30/1") {
			t.Errorf("video %dx%d at %s fps, want 640x360 at 30/1", s.Width, s.Height, s.FrameRate)
		}
	}

	// nginx received the same composite over RTMPS.
	var flv []string
	testkit.WaitFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		if flv = rtmpSrv.Recordings("composite"); len(flv) == 0 {
			return errors.New("nginx recorded nothing")
		}
		return nil
	})
	if len(flv) != 1 {
		t.Fatalf("nginx recorded %v", flv)
	}
	if d := testmedia.FFprobe(t, "-show_entries", "format=duration", flv[0]).Duration(t); math.Abs(d-3) > 0.3 {
		t.Errorf("RTMPS stream lasted %.2f s, want 3", d)
	}
	got := rgbAt(t, flv[0], 1.5, 640, 360, geom.Tiles[3].Tile.X+geom.Tiles[3].Tile.W/2, geom.Tiles[3].Tile.Y+geom.Tiles[3].Tile.H/2)
	if got[0] < 200 || got[1] < 200 || got[2] > 60 {
		t.Errorf("RTMPS stream's fourth tile is %v, want yellow", got)
	}

	// And the bucket holds the recording under the IVS composite prefix.
	out, err := client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("recordings")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
	}
	for _, k := range []string{"media/hls/multivariant.m3u8", "media/hls/360p30/playlist.m3u8", "media/hls/360p30/0.ts", "media/hls/360p30/1.ts"} {
		if !slices.Contains(keys, prefix+"/"+k) {
			t.Errorf("bucket lacks %s/%s: %v", prefix, k, keys)
		}
	}
	if res.Uploads.Pending != 0 || res.Uploads.Uploaded < 5 {
		t.Errorf("uploads %+v", res.Uploads)
	}
}

func TestComposeRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.webm")
	if err := os.WriteFile(garbage, []byte("not a media file"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]Config{
		"no inputs":      {HLSDir: dir},
		"no destination": {Inputs: []Input{{Path: garbage}}},
		"garbage input":  {Inputs: []Input{{Path: garbage}}, HLSDir: dir},
		"missing input":  {Inputs: []Input{{Path: filepath.Join(dir, "nope.webm")}}, HLSDir: dir},
		"bad encoder":    {Inputs: []Input{{Path: garbage}}, HLSDir: dir, Video: encoder.VideoConfig{Width: 1921}},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Run(context.Background(), cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestRealtimePacesOutput: with Realtime the composition takes at least its
// own duration of wall-clock time (a lower bound only, so a busy machine
// cannot fail it).
func TestRealtimePacesOutput(t *testing.T) {
	dir := t.TempDir()
	in := makeInput(t, dir, "red", 440, 1)
	res, err := Run(context.Background(), Config{Inputs: []Input{{Path: in}}, HLSDir: filepath.Join(dir, "hls"), Realtime: true,
		Video: encoder.VideoConfig{Width: 320, Height: 180}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Wall < time.Duration(float64(res.Frames-1)/30*float64(time.Second)) {
		t.Errorf("%d frames sent in %s: faster than the output clock", res.Frames, res.Wall)
	}
}

// TestCorruptInputIsSurvived damages the middle of an MPEG-TS input (H.264
// and AAC, a container whose demuxer resyncs): damaged packets are skipped
// or decoded with errors, the composition runs to the end without a crash,
// and the recording is valid.
func TestCorruptInputIsSurvived(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "damaged.ts")
	if b, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=3",
		"-f", "lavfi", "-i", "sine=d=3:sample_rate=48000", "-c:v", "libx264", "-g", "30", "-c:a", "aac", "-shortest", in).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 3; i < len(b)/3+8192 && i < len(b); i += 7 {
		b[i] ^= 0x5a // scattered damage over about 44 TS packets
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	hlsDir := filepath.Join(dir, "hls")
	res, err := Run(context.Background(), Config{Inputs: []Input{{Path: in}}, HLSDir: hlsDir, SegmentSeconds: 2,
		Video: encoder.VideoConfig{Width: 320, Height: 180}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Frames < 85 {
		t.Errorf("only %d frames composed from a 3 s input damaged at a third: want it read to the end", res.Frames)
	}
	p := testmedia.FFprobe(t, "-show_entries", "format=duration", filepath.Join(hlsDir, "media", "hls", "multivariant.m3u8"))
	if d := p.Duration(t); math.Abs(d-float64(res.Frames)/30) > 0.2 {
		t.Errorf("recording lasts %.2f s for %d frames", d, res.Frames)
	}
}
