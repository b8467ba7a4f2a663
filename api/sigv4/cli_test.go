package sigv4

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAWSCLI runs the AWS CLI (v1, botocore) against a net/http server that
// verifies with a Verifier: each call must succeed with the right secret and
// print InvalidSignatureException with a wrong one.
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the AWS CLI; skipped in -short mode")
	}
	aws := awsCLI(t)
	arn := []string{"--resource-arn", testARN}
	calls := []struct {
		name string
		args []string
		want string // in stdout
	}{
		{"list-stages", []string{"list-stages"}, `"stages": []`},
		{"create-stage", []string{"create-stage", "--name", "stage 1"}, ""},
		{"tag-resource", append([]string{"tag-resource", "--tags", "team=video,env=a b"}, arn...), ""},
		{"list-tags-for-resource", append([]string{"list-tags-for-resource"}, arn...), `"tags": {}`},
		{"untag-resource", append([]string{"untag-resource", "--tag-keys", "a", "b/c", "d e"}, arn...), ""},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each CLI start takes a second or two
			srv := newTestServer(t, testVerifier(time.Now()))
			out, errOut, err := aws.run(srv.URL, testSecret, c.args...)
			if err != nil {
				t.Fatalf("aws %s: %v\nstderr: %s\nserver: %+v", c.name, err, errOut, srv.lastSeen())
			}
			if !strings.Contains(out, c.want) {
				t.Fatalf("aws %s printed %q, want %q", c.name, out, c.want)
			}
			last := srv.lastSeen()
			t.Logf("%s SignedHeaders=%s", last.RequestURI, signedHeadersOf(last.Authorization))

			_, errOut, err = aws.run(srv.URL, wrongSecret, c.args...)
			if err == nil || !strings.Contains(errOut, CodeInvalidSignature) {
				t.Fatalf("aws %s with a wrong secret: %v, stderr %q; want %s", c.name, err, errOut, CodeInvalidSignature)
			}
		})
	}
}

// cli runs the AWS CLI with a configuration of its own.
type cli struct {
	path string
	env  []string
}

// awsCLI finds the AWS CLI and gives it an empty home and empty config and
// credentials files, so that nothing on the machine (profiles, SSO, a
// session token) takes part; it skips the test if the CLI or its
// ivs-realtime commands are missing.
func awsCLI(t *testing.T) *cli {
	t.Helper()
	path, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI (aws) is not on PATH")
	}
	home := t.TempDir()
	config, creds := filepath.Join(home, "config"), filepath.Join(home, "credentials")
	for _, f := range []string{config, creds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"HOME=" + home, "AWS_CONFIG_FILE=" + config, "AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "PAGER=cat", "MANPAGER=cat"}
	for _, kv := range os.Environ() {
		// Keep PATH and the like (a pyenv shim needs them); drop every AWS_*
		// variable and the HOME and pagers set above.
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "AWS_") && name != "HOME" && name != "PAGER" && name != "MANPAGER" {
			env = append(env, kv)
		}
	}
	c := &cli{path: path, env: env}
	cmd := exec.Command(path, "ivs-realtime", "help")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("aws ivs-realtime help failed (%v), so this AWS CLI cannot call the API: %s", err, truncate(string(out), 300))
	}
	return c
}

// run calls aws ivs-realtime <args> at endpoint with the test access key and
// the given secret.
func (c *cli) run(endpoint, secret string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := append([]string{"ivs-realtime"}, args...)
	full = append(full, "--endpoint-url", endpoint, "--region", testRegion, "--output", "json")
	cmd := exec.CommandContext(ctx, c.path, full...)
	cmd.Env = append(c.env[:len(c.env):len(c.env)], "AWS_ACCESS_KEY_ID="+testAKID, "AWS_SECRET_ACCESS_KEY="+secret)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}
