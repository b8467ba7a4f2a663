// Package safepath joins untrusted path parts (bucket names, key prefixes,
// rendition folders read from the store) under a trusted root, and refuses
// any result that would leave it. It owns no files: it only decides where a
// writer may write.
package safepath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrEscape is returned for a part that would place a path outside its root.
var ErrEscape = errors.New("path leaves its root")

// Join is root joined with parts, each a slash-separated relative path. It
// refuses empty, absolute, ".." and NUL-holding parts, and a result whose
// existing ancestors resolve (through symlinks) outside root's resolution:
// a symlink planted inside the root cannot redirect a writer elsewhere.
func Join(root string, parts ...string) (string, error) {
	p := root
	for _, part := range parts {
		if err := check(part); err != nil {
			return "", err
		}
		p = filepath.Join(p, filepath.FromSlash(part))
	}
	rel, err := filepath.Rel(root, p)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("%q under %s: %w", strings.Join(parts, "/"), root, ErrEscape)
	}
	if err := within(root, p); err != nil {
		return "", fmt.Errorf("%q under %s: %w", strings.Join(parts, "/"), root, err)
	}
	return p, nil
}

// check refuses a part that is not a plain relative path. Backslashes are
// refused too: on Windows they separate elements, and no key needs them.
func check(part string) error {
	switch {
	case part == "":
		return fmt.Errorf("empty part: %w", ErrEscape)
	case strings.ContainsAny(part, "\x00\\"):
		return fmt.Errorf("%q holds a NUL or a backslash: %w", part, ErrEscape)
	case strings.HasPrefix(part, "/") || filepath.IsAbs(part) || filepath.VolumeName(part) != "":
		return fmt.Errorf("%q is absolute: %w", part, ErrEscape)
	}
	for _, el := range strings.Split(part, "/") {
		if el == ".." {
			return fmt.Errorf("%q holds \"..\": %w", part, ErrEscape)
		}
	}
	return nil
}

// within checks that p's deepest existing ancestor, symlinks resolved,
// is still under root resolved. A root that does not exist yet holds no
// symlinks to follow.
func within(root, p string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resolve root: %w", err)
	}
	existing := p
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			return nil
		}
		existing = parent
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", existing, err)
	}
	rel, err := filepath.Rel(realRoot, real)
	if err != nil || rel != "." && !filepath.IsLocal(rel) {
		return fmt.Errorf("%s resolves to %s: %w", existing, real, ErrEscape)
	}
	return nil
}
