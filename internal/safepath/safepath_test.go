package safepath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJoin(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "bucket"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		parts []string
		want  string // "" when refused
	}{
		{[]string{"bucket", "stage/comp/dest/composite"}, "bucket/stage/comp/dest/composite"},
		{[]string{"my.bucket-1", "a/./b"}, "my.bucket-1/a/b"},
		{[]string{"...", "x"}, ".../x"},
		{[]string{"bucket", "a/b/"}, "bucket/a/b"},
		{[]string{"../etc"}, ""},
		{[]string{"bucket", "a/../../x"}, ""},
		{[]string{"bucket", "a/.."}, ""},
		{[]string{".."}, ""},
		{[]string{"/etc"}, ""},
		{[]string{"bucket", "/abs"}, ""},
		{[]string{""}, ""},
		{[]string{"bucket", "a\\..\\..\\x"}, ""},
		{[]string{"bucket", "a\x00b"}, ""},
		{[]string{"link", "x"}, ""}, // a symlink out of the root
		{[]string{"link"}, ""},      // the symlink itself
		{[]string{"bucket", "new/dir"}, "bucket/new/dir"},
	} {
		got, err := Join(root, tc.parts...)
		if tc.want == "" {
			if !errors.Is(err, ErrEscape) {
				t.Errorf("Join(%q) = %q, %v; want ErrEscape", tc.parts, got, err)
			}
			continue
		}
		if err != nil || got != filepath.Join(root, filepath.FromSlash(tc.want)) {
			t.Errorf("Join(%q) = %q, %v; want %s", tc.parts, got, err, tc.want)
		}
	}
}

// TestJoinMissingRoot: a root not created yet holds no symlink to follow.
func TestJoinMissingRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "not", "yet")
	if got, err := Join(root, "b", "p/q"); err != nil || got != filepath.Join(root, "b", "p", "q") {
		t.Errorf("Join = %q, %v", got, err)
	}
}

// FuzzJoin: whatever the parts, an accepted result is lexically under
// root, and a part with a ".." element is refused.
func FuzzJoin(f *testing.F) {
	for _, s := range []string{"bucket", "../x", "a/../../b", "/abs", "a/b/c", "..", ".", "a\\b", "a//b"} {
		f.Add(s, "prefix/a")
	}
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := Join(root, a, b)
		if err != nil {
			return
		}
		rel, rerr := filepath.Rel(root, got)
		if rerr != nil || rel != "." && !filepath.IsLocal(rel) {
			t.Fatalf("Join(%q, %q) = %q leaves %s", a, b, got, root)
		}
		for _, el := range strings.Split(a+"/"+b, "/") {
			if el == ".." {
				t.Fatalf("Join(%q, %q) accepted a \"..\" element", a, b)
			}
		}
	})
}
