//go:build containers

package containertest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The images kept between runs, because they take a while to make and do
// not change with the code: the Debian base (debootstrap) and the
// Dockerfile's runtime stage (the base + FFmpeg libraries + the user),
// which podman's layer cache rebuilds when that stage changes. Everything
// else a run makes — images, containers, volumes — is removed at its end.
const (
	baseImage    = "localhost/debian:bookworm-slim"
	runtimeImage = "localhost/stagehand-runtime:bookworm"
	repoRoot     = "../.."
)

// engine runs podman with the configuration this machine needs: the runc
// runtime and the cgroupfs manager (crun and systemd's manager fail here),
// events in a file, ulimits within the machine's hard limits, and no
// registry to pull from (every image is local).
type engine struct {
	t   *testing.T
	env []string
	id  string // this run's suffix of every name, and the value of its label
	dir string
	// before are the images there were before the run.
	before map[string]bool
}

// imageIDs lists every image, intermediate ones included, or only the
// dangling ones (untagged, no child).
func (e *engine) imageIDs(dangling bool) map[string]bool {
	args := []string{"images", "-a", "-q", "--no-trunc"}
	if dangling {
		args = append(args, "--filter", "dangling=true")
	}
	out, _ := e.podman(args...)
	ids := map[string]bool{}
	for _, id := range strings.Fields(out) {
		ids[id] = true
	}
	return ids
}

// newImages are the images made since the run began.
func (e *engine) newImages(dangling bool) map[string]bool {
	ids := e.imageIDs(dangling)
	for id := range ids {
		if e.before[id] {
			delete(ids, id)
		}
	}
	return ids
}

func newEngine(t *testing.T) *engine {
	t.Helper()
	for _, bin := range []string{"podman", "runc", "debootstrap"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed: run scripts/deps.sh --containers (make test-containers does)", bin)
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	e := &engine{t: t, id: hex.EncodeToString(b), dir: t.TempDir()}
	var nofile, nproc syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	_ = syscall.Getrlimit(6 /* RLIMIT_NPROC */, &nproc)
	nf, np := min(nofile.Max, 8192), min(nproc.Max, 4096)
	conf := filepath.Join(e.dir, "containers.conf")
	writeFile(t, conf, fmt.Sprintf(`[containers]
default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`, nf, nf, np, np))
	reg := filepath.Join(e.dir, "registries.conf")
	writeFile(t, reg, "unqualified-search-registries = []\nshort-name-mode = \"enforcing\"\n")
	e.env = append(os.Environ(), "CONTAINERS_CONF="+conf, "CONTAINERS_REGISTRIES_CONF="+reg)
	// Registered first, so it runs last: after every other clean-up,
	// nothing of this run is left.
	t.Cleanup(func() {
		if left := e.leftovers(); len(left) > 0 {
			t.Errorf("left after the clean-up: %v", left)
		}
	})
	// The builds' untagged stage and layer images: removed, but for the
	// cached images and their layers (podman refuses to remove an image
	// with children).
	e.before = e.imageIDs(false)
	t.Cleanup(func() {
		kept := map[string]bool{}
		for _, ref := range []string{baseImage, runtimeImage} {
			if id, err := e.podman("image", "inspect", "--format", "{{.Id}}", ref); err == nil {
				kept[id] = true
				kept["sha256:"+id] = true
			}
		}
		for id := range e.newImages(false) {
			if !kept[id] {
				_, _ = e.podman("rmi", id)
			}
		}
	})
	return e
}

// name is a container, volume or image name of this run.
func (e *engine) name(s string) string { return "shct-" + e.id + "-" + s }

// podman runs a podman command and returns its standard output.
func (e *engine) podman(args ...string) (string, error) {
	cmd := exec.Command("podman", args...)
	cmd.Env = e.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("podman %s: %w\n%s", strings.Join(args, " "), err, lastLines(errb.String(), 20))
	}
	return strings.TrimSpace(out.String()), nil
}

func (e *engine) must(args ...string) string {
	e.t.Helper()
	out, err := e.podman(args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// podmanLog runs a long podman command (a build) with its output in a log file.
func (e *engine) podmanLog(log string, stdin io.Reader, args ...string) {
	e.t.Helper()
	f, err := os.Create(filepath.Join(e.dir, log))
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("podman", args...)
	cmd.Env, cmd.Stdout, cmd.Stderr, cmd.Stdin = e.env, f, f, stdin
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(f.Name())
		e.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, lastLines(string(b), 30))
	}
}

func (e *engine) imageExists(ref string) bool {
	_, err := e.podman("image", "exists", ref)
	return err == nil
}

// ensureBase imports the Debian bookworm base from debootstrap once
// (about a minute); later runs find it.
func (e *engine) ensureBase() {
	e.t.Helper()
	if e.imageExists(baseImage) {
		return
	}
	root := filepath.Join(e.dir, "rootfs")
	start := time.Now()
	cmd := exec.Command("debootstrap", "--variant=minbase", "bookworm", root, "http://deb.debian.org/debian")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("debootstrap: %v\n%s", err, lastLines(string(out), 20))
	}
	for _, junk := range []string{"var/cache/apt/archives", "var/lib/apt/lists"} {
		ents, _ := os.ReadDir(filepath.Join(root, junk))
		for _, en := range ents {
			if en.Type().IsRegular() && en.Name() != "lock" {
				_ = os.Remove(filepath.Join(root, junk, en.Name()))
			}
		}
	}
	tar := exec.Command("tar", "-C", root, "-c", ".")
	pipe, err := tar.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := tar.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.podmanLog("import.log", pipe, "import", "-", baseImage)
	if err := tar.Wait(); err != nil {
		e.t.Fatalf("tar of the debootstrap root: %v", err)
	}
	_ = os.RemoveAll(root)
	e.t.Logf("imported %s from debootstrap in %s", baseImage, time.Since(start).Round(time.Second))
}

// build builds an image of this run from dockerfile in context; the image
// is removed when the test ends. It never pulls: every FROM is local.
func (e *engine) build(tag, dockerfile, context string, args ...string) {
	e.t.Helper()
	cmd := append([]string{"build", "--pull=never", "--network", "host", "--format", "docker", "--layers",
		"-f", dockerfile, "-t", tag}, args...)
	e.podmanLog(strings.NewReplacer("/", "_", ":", "_").Replace(tag)+".log", nil, append(cmd, context)...)
	e.t.Cleanup(func() { e.remove("rmi", "-f", tag) })
}

// volume creates a named volume of this run, removed at the end.
func (e *engine) volume(s string) string {
	e.t.Helper()
	v := e.name(s)
	e.must("volume", "create", "--label", "stagehand-containertest="+e.id, v)
	e.t.Cleanup(func() { e.remove("volume", "rm", "-f", v) })
	return v
}

// container is a container of the fleet.
type container struct {
	e    *engine
	name string // the container's name, which is also its host name
}

// run starts a container on the host's network (every server binds
// 127.0.0.1) and registers its removal; opts come before the image.
func (e *engine) run(s string, opts []string, image string, args ...string) *container {
	e.t.Helper()
	c := &container{e: e, name: e.name(s)}
	cmd := append([]string{"run", "-d", "--pull=never", "--name", c.name, "--hostname", c.name, "--network", "host",
		"--label", "stagehand-containertest=" + e.id}, opts...)
	e.t.Cleanup(func() {
		if e.t.Failed() {
			out, _ := e.podman("logs", "--tail", "40", c.name)
			e.t.Logf("last lines of container %s:\n%s", c.name, out)
		}
		e.remove("rm", "-f", "-t", "0", c.name)
	})
	e.must(append(append(cmd, image), args...)...)
	return c
}

// remove runs a clean-up command; a failure is reported, not fatal, so
// every clean-up runs.
func (e *engine) remove(args ...string) {
	if _, err := e.podman(args...); err != nil {
		e.t.Errorf("clean-up: %v", err)
	}
}

// leftovers lists what still carries this run's label.
func (e *engine) leftovers() []string {
	var left []string
	for _, kind := range [][]string{{"ps", "-a"}, {"volume", "ls"}} {
		out, _ := e.podman(append(kind, "-q", "--filter", "label=stagehand-containertest="+e.id)...)
		left = append(left, strings.Fields(out)...)
	}
	out, _ := e.podman("images", "-q", "--filter", "reference=localhost/shct-"+e.id+"-*")
	left = append(left, strings.Fields(out)...)
	for id := range e.newImages(true) {
		left = append(left, "untagged image "+id[:min(len(id), 19)])
	}
	return left
}

func (c *container) inspect(format string) string {
	c.e.t.Helper()
	return c.e.must("inspect", "--format", format, c.name)
}

func (c *container) exec(args ...string) (string, error) {
	return c.e.podman(append([]string{"exec", c.name}, args...)...)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
