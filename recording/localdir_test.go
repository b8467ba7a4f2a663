package recording_test

import (
	"path/filepath"
	"testing"

	"github.com/stagehand-rt/stagehand/recording"
)

// TestLocalDir: a bucket or prefix read from the store that would leave
// the root is refused before anything is created.
func TestLocalDir(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		bucket, prefix string
		ok             bool
	}{
		{"my-bucket", "stage/st-abc/participant/1700000000000", true},
		{"../escape", "stage/st-abc/p/1", false},
		{"my-bucket", "../../../escape", false},
		{"my-bucket", "/etc/cron.d", false},
		{"my-bucket", "a/./b", false},
		{"My_Bucket", "a/b", false},
	} {
		got, err := recording.LocalDir(root, tc.bucket, tc.prefix)
		switch {
		case tc.ok && (err != nil || got != filepath.Join(root, tc.bucket, filepath.FromSlash(tc.prefix))):
			t.Errorf("LocalDir(%q, %q) = %q, %v", tc.bucket, tc.prefix, got, err)
		case !tc.ok && err == nil:
			t.Errorf("LocalDir(%q, %q) = %q; want refused", tc.bucket, tc.prefix, got)
		}
	}
}
