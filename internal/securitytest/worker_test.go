//go:build security

package securitytest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/worker"
)

// TestWorkerPathTraversal: a bucket name or a recording prefix written
// straight into the store (past the API's validation) that climbs out of
// the buckets directory fails its composition, with nothing written
// anywhere.
func TestWorkerPathTraversal(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	root := t.TempDir()
	buckets := filepath.Join(root, "data", "buckets")
	st := env.CreateStage(t, "traversal")
	sc := storageConfig(t, env, "honest-bucket")
	scID := arnID(t, *sc)
	// The store is written by whoever reaches NATS; the worker must not
	// trust it more than the API trusts a request.
	if _, err := env.Store.StorageConfigurations.Update(env.Ctx, scID, func(c *ivs.StorageConfiguration) error {
		c.S3.BucketName = "../../escaped-bucket"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	badBucket := startComposition(t, env, st, sc)
	sc2 := storageConfig(t, env, "honest-bucket")
	badPrefix := startComposition(t, env, env.CreateStage(t, "traversal-2"), sc2)
	if _, err := env.Store.Compositions.Update(env.Ctx, arnID(t, badPrefix), func(c *ivs.Composition) error {
		c.Destinations[0].Detail.S3.RecordingPrefix = "../../../escaped-prefix"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runWorker(t, env, worker.Config{BucketsDir: buckets})
	for name, arn := range map[string]string{"bucket name with ../": badBucket, "recording prefix with ..": badPrefix} {
		Attack(t, name, func(t *testing.T) {
			var reason string
			eventually(t, 60*time.Second, "composition FAILED", func() bool {
				c, err := env.Store.Compositions.Get(env.Ctx, arnID(t, arn))
				if err == nil && c.Run != nil {
					reason = c.Run.Reason
				}
				return err == nil && c.State == ivs.CompositionFailed
			})
			t.Logf("FAILED: %s", reason)
			if !strings.Contains(reason, "bucketName") && !strings.Contains(reason, "recordingPrefix") {
				t.Errorf("FAILED with reason %q; want it to name the refused bucket or prefix", reason)
			}
			if fs := files(t, root); len(fs) != 0 {
				t.Errorf("files written: %v", fs)
			}
			for _, escaped := range []string{"escaped-bucket", "escaped-prefix"} {
				matches, _ := filepath.Glob(filepath.Join(filepath.Dir(root), "*", escaped))
				if _, err := os.Stat(filepath.Join(root, escaped)); err == nil || len(matches) > 0 {
					t.Errorf("%s created outside the buckets directory", escaped)
				}
			}
		})
	}
}

// TestWorkerSymlinkEscape: a bucket directory replaced by a symlink to
// elsewhere does not lead the worker's writes out of the buckets
// directory: the composition fails, nothing is written there.
func TestWorkerSymlinkEscape(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	buckets, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(buckets, "linked-bucket")); err != nil {
		t.Fatal(err)
	}
	arn := startComposition(t, env, env.CreateStage(t, "symlink"), storageConfig(t, env, "linked-bucket"))
	runWorker(t, env, worker.Config{BucketsDir: buckets})
	Attack(t, "bucket directory symlinked out of the root", func(t *testing.T) {
		var reason string
		eventually(t, 60*time.Second, "composition FAILED", func() bool {
			c, err := env.Store.Compositions.Get(env.Ctx, arnID(t, arn))
			if err == nil && c.Run != nil {
				reason = c.Run.Reason
			}
			return err == nil && c.State == ivs.CompositionFailed
		})
		t.Logf("FAILED: %s", reason)
		if fs := files(t, outside); len(fs) != 0 {
			t.Errorf("files written through the symlink: %v", fs)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Errorf("%d entries created through the symlink", len(entries))
		}
	})
}

// TestRecordingFileModes: a composition's recording (segments, playlists,
// events, directories) is readable by its owner only.
func TestRecordingFileModes(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	buckets := filepath.Join(t.TempDir(), "buckets")
	st := env.CreateStage(t, "modes")
	env.PublishSynth(t, st, env.Token(t, *st.Arn, "red", nil), synth.Config{Width: 320, Height: 180, Color: "red"},
		client.PublishOptions{})
	runWorker(t, env, worker.Config{BucketsDir: buckets})
	arn := startComposition(t, env, st, storageConfig(t, env, "modes-bucket"))
	eventually(t, 60*time.Second, "a recorded segment", func() bool {
		for _, f := range files(t, buckets) {
			if strings.HasSuffix(f, ".ts") {
				return true
			}
		}
		return false
	})
	if _, err := env.API.StopComposition(env.Ctx, &ivsrealtime.StopCompositionInput{Arn: &arn}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "composition STOPPED", func() bool {
		c, err := env.Store.Compositions.Get(env.Ctx, arnID(t, arn))
		return err == nil && c.Ended()
	})
	Attack(t, "another local user reads a recording", func(t *testing.T) {
		n := 0
		err := filepath.WalkDir(buckets, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			n++
			if perm := info.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("%s: mode %v, readable by others", p, perm)
			}
			return nil
		})
		if err != nil || n < 3 {
			t.Errorf("walked %d entries (%v); want the recording", n, err)
		}
	})
}

func storageConfig(t *testing.T, env *stagetest.Env, bucket string) *string {
	t.Helper()
	out, err := env.API.CreateStorageConfiguration(env.Ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}})
	if err != nil {
		t.Fatal(err)
	}
	return out.StorageConfiguration.Arn
}

// startComposition records stage st to storage configuration sc.
func startComposition(t *testing.T, env *stagetest.Env, st types.Stage, sc *string) string {
	t.Helper()
	enc, err := env.API.CreateEncoderConfiguration(env.Ctx, &ivsrealtime.CreateEncoderConfigurationInput{
		Video: &types.Video{Width: aws.Int32(320), Height: aws.Int32(180), Framerate: aws.Float32(15),
			Bitrate: aws.Int32(300_000)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := env.API.StartComposition(env.Ctx, &ivsrealtime.StartCompositionInput{StageArn: st.Arn,
		Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{
			StorageConfigurationArn: sc, EncoderConfigurationArns: []string{*enc.EncoderConfiguration.Arn},
			RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{
				TargetSegmentDurationSeconds: aws.Int32(2)}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return *out.Composition.Arn
}

func arnID(t *testing.T, arn string) string {
	t.Helper()
	a, err := ivs.ParseARN(arn)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}
