package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/clidoc"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stagesignal"
	"github.com/stagehand-rt/stagehand/store"
)

// TestAWSCLIExamples replays the documented examples of the AWS CLI v1
// ("aws ivs-realtime <op>", the .rst files shipped inside the awscli
// package) against the server, and checks that each prints what the
// documentation shows: every member of the example's output, with the same
// value wherever the value is deterministic.
//
// The examples come from real AWS accounts, so the replay maps them onto
// this server: every ARN of an example names the resource the replay
// created for it (or the first one of that type), participants, sessions and
// events are written to the store as the stage server will write them, and
// compositions are moved to the states a worker would give them. The
// examples are read from the installed CLI at test time; a few typos in them
// are repaired (see cliErrata and clidoc.RepairJSON) and logged.
func TestAWSCLIExamples(t *testing.T) {
	awsPath, dir := awsCLI(t)
	files, err := loadCLIExamples(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e := newEnv(t)
	r := newCLIReplay(t, e, awsPath)
	plan := r.plan()

	planned := map[string]bool{}
	for _, phase := range plan {
		for _, lane := range phase {
			for _, s := range lane {
				planned[s.file] = true
			}
		}
	}
	for name := range files {
		if !planned[name] && cliUnimplemented[name] == "" {
			t.Errorf("%s: an example the replay does not know; add it to the plan in cli_test.go", name)
		}
	}

	// Lanes of one phase run concurrently (the CLI takes about a second to
	// start); the steps of a lane, and the phases, run in order.
	results := map[string][]*cliRun{}
	var mu sync.Mutex
	for _, phase := range plan {
		var wg sync.WaitGroup
		for _, lane := range phase {
			wg.Go(func() {
				for _, s := range lane {
					runs := r.runStep(s, files[s.file])
					mu.Lock()
					results[s.file] = runs
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}

	for _, phase := range plan {
		for _, lane := range phase {
			for _, s := range lane {
				t.Run(s.file, func(t *testing.T) {
					if f := files[s.file]; f != nil {
						for _, n := range f.notes {
							t.Log(n)
						}
					}
					for _, x := range results[s.file] {
						for _, l := range x.logs {
							t.Logf("%s: %s", x.name(), l)
						}
						for _, m := range x.errs {
							t.Errorf("%s: %s", x.name(), m)
						}
						if len(x.errs) > 0 && len(x.argv) > 0 {
							t.Logf("%s: command: aws %s", x.name(), shellQuote(x.argv))
						}
					}
				})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cliUnimplemented)) {
		t.Run(name, func(t *testing.T) { t.Skip(cliUnimplemented[name]) })
	}
	r.logExtras(t)
	t.Logf("replayed in %v", time.Since(start).Round(time.Millisecond))
}

// cliUnimplemented are the CLI examples of operations the server does not
// implement yet.
var cliUnimplemented = map[string]string{
	"start-participant-replication.rst": "participant replication is not implemented: StartParticipantReplication is not replayed",
	"stop-participant-replication.rst":  "participant replication is not implemented: StopParticipantReplication is not replayed",
	"list-participant-replicas.rst":     "participant replication is not implemented: ListParticipantReplicas is not replayed",
}

// replicationMembers are members only a replicated participant has; the
// server does not replicate participants, so they may be missing.
var replicationMembers = map[string]bool{
	"replicationState": true, "sourceStageArn": true, "sourceSessionId": true,
	"destinationStageArn": true, "destinationSessionId": true,
}

// cliErrata repair typos of the installed examples that no server could
// satisfy. Each applies only where its text is found, and is logged.
var cliErrata = []struct{ file, old, new, why string }{
	{"get-storage-configuration.rst", "--name arn ", "--arn ", "the command passes the ARN as `--name arn <ARN>`; replayed with --arn"},
	{"list-ingest-configurations.rst", `"participnatId"`, `"participantId"`, "the output misspells participantId as participnatId"},
}

// awsCLI finds the AWS CLI v1 and its ivs-realtime examples, or skips. It
// runs the aws script installed beside the Python that holds the examples,
// so that the examples and the CLI are of one version (and a version
// manager's shim, slow to start, is bypassed).
func awsCLI(t *testing.T) (awsPath, examples string) {
	t.Helper()
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI v1 (aws, with ivs-realtime) is needed: aws is not on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "-c", "import awscli,os,sys;print(os.path.dirname(awscli.__file__));print(sys.executable)").Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != 2 {
		t.Skipf("the AWS CLI v1 is needed as a Python package (import awscli) to read its examples: %v", err)
	}
	dir := filepath.Join(lines[0], "examples", "ivs-realtime")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("the AWS CLI v1's ivs-realtime examples are needed: %v", err)
	}
	if script := filepath.Join(filepath.Dir(lines[1]), "aws"); isExecutable(script) {
		awsPath = script
	}
	help := exec.CommandContext(ctx, awsPath, "ivs-realtime", "help")
	help.Env = append(isolatedEnv(t), "AWS_PAGER=", "PAGER=cat", "MANPAGER=cat")
	if out, err := help.CombinedOutput(); err != nil {
		t.Skipf("the AWS CLI v1 with ivs-realtime is needed: %s ivs-realtime help: %v\n%s", awsPath, err, tail(out))
	}
	return awsPath, dir
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// shellQuote writes a command so that it can be pasted into a shell.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:/=@+") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// cliFile is one .rst file: its examples, and the errata applied to it.
type cliFile struct {
	examples []*clidoc.Example
	notes    []string
}

func loadCLIExamples(dir string) (map[string]*cliFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.rst"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no examples in %s", dir)
	}
	files := map[string]*cliFile{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(p)
		text, f := string(b), &cliFile{}
		if cliUnimplemented[name] != "" {
			files[name] = f
			continue
		}
		for _, fix := range cliErrata {
			if fix.file == name && strings.Contains(text, fix.old) {
				text = strings.ReplaceAll(text, fix.old, fix.new)
				f.notes = append(f.notes, "erratum: "+fix.why)
			}
		}
		if f.examples, err = clidoc.Parse(name, text); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		files[name] = f
	}
	return files, nil
}

// cliReplay is the state of one replay: the server, the resources created
// for the examples, and the bindings of example ARNs to them.
type cliReplay struct {
	e      *env
	aws    string
	env    []string          // the CLI's environment, with the test credentials
	badEnv []string          // the same with a wrong secret
	files  map[string]string // files the commands read (`cat FILE`), by name
	pem    string            // the public key import-public-key imports

	mu      sync.Mutex
	bound   map[string]string   // "type/id" of an example ARN → our ARN
	primary map[string]string   // type → the first resource of that type created
	created map[string]string   // "file#n" → the ARN example n of file created
	extras  map[string][]string // operation → our members the examples lack
}

func newCLIReplay(t *testing.T, e *env, awsPath string) *cliReplay {
	t.Helper()
	dir := t.TempDir()
	cfg, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	for _, p := range []string{cfg, creds} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	material, _ := p384PEM(t)
	pemPath := filepath.Join(dir, "public.pem")
	if err := os.WriteFile(pemPath, []byte(material), 0o600); err != nil {
		t.Fatal(err)
	}
	base := append(isolatedEnv(t), "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+creds,
		"AWS_PAGER=", "AWS_MAX_ATTEMPTS=1", "AWS_EC2_METADATA_DISABLED=true", "AWS_ACCESS_KEY_ID="+testKeyID)
	return &cliReplay{
		e: e, aws: awsPath,
		env:     append(slices.Clone(base), "AWS_SECRET_ACCESS_KEY="+testSecret),
		badEnv:  append(slices.Clone(base), "AWS_SECRET_ACCESS_KEY=not-"+testSecret),
		files:   map[string]string{"public.pem": pemPath},
		pem:     material,
		bound:   map[string]string{},
		primary: map[string]string{},
		created: map[string]string{},
		extras:  map[string][]string{},
	}
}

// cliStep replays the examples of one file.
type cliStep struct {
	file string
	// created is the path in the output of the ARN of the resource each
	// example creates.
	created []string
	// seeded: the example's data was written to the store by prepare, so
	// times and ids must come back exactly.
	seeded bool
	// allowMissing lists members the server may leave out here, and why.
	allowMissing map[string]string
	// prepare runs before each example: it binds the example's ARNs and
	// writes what other components would have written.
	prepare func(x *cliRun) error
	// fallback creates, when the command fails, what it should have
	// created, so that one failure does not fail every later example.
	fallback func(x *cliRun) error
	// custom replaces the replay of documented examples.
	custom func(x *cliRun)
}

// plan is the replay order: phases run one after the other; the lanes of a
// phase run concurrently, each lane's steps in order.
func (r *cliReplay) plan() [][][]cliStep {
	return [][][]cliStep{
		{ // creations, and the error paths
			{
				{file: "create-storage-configuration.rst", created: []string{"storageConfiguration", "arn"}},
				{file: "create-stage.rst", created: []string{"stage", "arn"}, allowMissing: map[string]string{
					"activeSessionId": "no session runs on a stage just created"}},
			},
			{{file: "create-encoder-configuration.rst", created: []string{"encoderConfiguration", "arn"}}},
			{{file: "import-public-key.rst", created: []string{"publicKey", "arn"}}},
			{{file: "create-ingest-configuration.rst", created: []string{"ingestConfiguration", "arn"}, fallback: r.createIngest}},
			{{file: "error-resource-not-found", custom: r.unknownStage}},
			{{file: "error-invalid-signature", custom: r.wrongSecret}},
		},
		{ // reads, updates, compositions
			{{file: "create-participant-token.rst"}},
			{{file: "get-stage.rst", prepare: r.prepareGetStage}},
			{{file: "list-stages.rst", prepare: r.prepareListStages}, {file: "update-stage.rst", prepare: r.endSession}},
			{{file: "get-encoder-configuration.rst"}, {file: "list-encoder-configurations.rst", prepare: r.prepareListEncoders}},
			{{file: "get-storage-configuration.rst"}, {file: "list-storage-configurations.rst", prepare: r.prepareListStorage}},
			{{file: "get-public-key.rst"}, {file: "list-public-keys.rst"}},
			{{file: "get-ingest-configuration.rst"}, {file: "list-ingest-configurations.rst", prepare: r.prepareListIngest}},
			{{file: "start-composition.rst", created: []string{"composition", "arn"}}},
		},
		{ // sessions and participants, compositions running, attachments
			{{file: "update-ingest-configuration.rst"}},
			{
				{file: "get-stage-session.rst", seeded: true, prepare: r.seedSessions},
				{file: "list-stage-sessions.rst", seeded: true, prepare: r.seedSessions},
			},
			{
				{file: "get-participant.rst", seeded: true, prepare: r.seedParticipants},
				{file: "list-participants.rst", seeded: true, prepare: r.seedParticipants},
			},
			{{file: "list-participant-events.rst", seeded: true, prepare: r.seedEvents}},
			{{file: "disconnect-participant.rst", prepare: r.prepareDisconnect}},
			{
				{file: "get-composition.rst", prepare: r.prepareGetComposition},
				{file: "list-compositions.rst", prepare: r.prepareListCompositions},
				{file: "stop-composition.rst", prepare: r.prepareStopComposition},
			},
		},
		{ // deletions; deleting the stage stops its compositions, which
			// frees the encoder and storage configurations
			{
				{file: "delete-stage.rst", prepare: r.expectGone},
				{file: "delete-encoder-configuration.rst", prepare: r.expectGone},
				{file: "delete-storage-configuration.rst", prepare: r.prepareDeleteStorage},
			},
			{{file: "delete-ingest-configuration.rst", prepare: r.prepareDeleteIngest}},
			{{file: "delete-public-key.rst", prepare: r.expectGone}},
		},
	}
}

// cliRun is the replay of one example: its bindings and its findings.
type cliRun struct {
	r      *cliReplay
	step   cliStep
	ex     *clidoc.Example
	ctx    context.Context
	local  map[string]string // bindings of this example only, before r.bound
	argv   []string          // the command run, after substitution
	after  []func(ours any)  // checks prepare asked for
	errs   []string
	logs   []string
	extras []string
}

func (x *cliRun) name() string {
	if x.ex == nil {
		return x.step.file
	}
	return fmt.Sprintf("example %d (%s)", x.ex.Index, x.ex.Title)
}

func (x *cliRun) errorf(format string, a ...any) { x.errs = append(x.errs, fmt.Sprintf(format, a...)) }
func (x *cliRun) logf(format string, a ...any)   { x.logs = append(x.logs, fmt.Sprintf(format, a...)) }

func (r *cliReplay) runStep(s cliStep, f *cliFile) []*cliRun {
	if s.custom != nil {
		x := r.newRun(s, nil)
		s.custom(x)
		return []*cliRun{x}
	}
	if f == nil {
		x := r.newRun(s, nil)
		x.errorf("the installed AWS CLI has no example %s", s.file)
		return []*cliRun{x}
	}
	var runs []*cliRun
	for _, ex := range f.examples {
		x := r.newRun(s, ex)
		x.replay()
		runs = append(runs, x)
	}
	return runs
}

func (r *cliReplay) newRun(s cliStep, ex *clidoc.Example) *cliRun {
	return &cliRun{r: r, step: s, ex: ex, ctx: r.e.ctx, local: map[string]string{}}
}

// run runs the CLI against the server and returns its stdout and stderr.
func (r *cliReplay) run(ctx context.Context, environ []string, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args = slices.Concat(args, []string{"--endpoint-url", r.e.url, "--region", testRegion, "--output", "json"})
	cmd := exec.CommandContext(ctx, r.aws, args...)
	cmd.Env = environ
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

func (x *cliRun) replay() {
	for _, n := range x.ex.Notes {
		x.logf("%s", n)
	}
	if p := x.step.prepare; p != nil {
		if err := p(x); err != nil {
			x.errorf("preparing the server: %v", err)
			return
		}
	}
	argv, err := x.substitute(x.ex.Args)
	if err != nil {
		x.errorf("%v", err)
		return
	}
	x.argv = argv
	stdout, stderr, err := x.r.run(x.ctx, x.r.env, argv...)
	if err != nil {
		x.errorf("the command failed: %v\n%s", err, stderr)
		if f := x.step.fallback; f != nil {
			if err := f(x); err != nil {
				x.errorf("creating the resource otherwise: %v", err)
			} else {
				x.logf("created the resource with the Go SDK instead, so that the later examples run")
			}
		}
		return
	}
	if x.ex.Output == nil {
		if s := strings.TrimSpace(string(stdout)); s != "" {
			x.errorf("the example prints nothing; ours printed %s", s)
		}
		for _, f := range x.after {
			f(nil)
		}
		return
	}
	var ours any
	if err := json.Unmarshal(stdout, &ours); err != nil {
		x.errorf("the output is not JSON: %v\n%s", err, stdout)
		return
	}
	if len(x.step.created) > 0 {
		x.recordCreated(ours)
	}
	x.compare("", "", x.ex.Output, ours)
	for _, f := range x.after {
		f(ours)
	}
	x.r.mu.Lock()
	op := strings.TrimSuffix(x.ex.File, ".rst")
	x.r.extras[op] = append(x.r.extras[op], x.extras...)
	x.r.mu.Unlock()
}

// recordCreated binds the example's ARN to the resource the command created.
func (x *cliRun) recordCreated(ours any) {
	theirs, _ := dig(x.ex.Output, x.step.created...).(string)
	arn, _ := dig(ours, x.step.created...).(string)
	a, err := ivs.ParseARN(arn)
	if err != nil {
		x.errorf("%s: %q is not an ARN", strings.Join(x.step.created, "."), arn)
		return
	}
	key := exampleARNKey(theirs)
	x.local[key] = arn
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	if _, ok := x.r.bound[key]; !ok && key != "" {
		x.r.bound[key] = arn
	}
	if _, ok := x.r.primary[a.Type]; !ok {
		x.r.primary[a.Type] = arn
	}
	x.r.created[fmt.Sprintf("%s#%d", x.ex.File, x.ex.Index)] = arn
}

func dig(v any, path ...string) any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

var (
	commandARN = regexp.MustCompile(`arn:aws:ivs:[a-z0-9-]*:[0-9]*:([a-z-]+)/([A-Za-z0-9]+)`)
	arnTail    = regexp.MustCompile(`([a-z-]+)/([A-Za-z0-9]+)$`)
)

// exampleARNKey is "type/id" of an ARN of the examples (some are garbled,
// as in "arn:aws:ivs:arn:aws:ivs:...", but end well).
func exampleARNKey(arn string) string {
	m := arnTail.FindStringSubmatch(arn)
	if m == nil {
		return ""
	}
	return m[1] + "/" + m[2]
}

// resolve returns our ARN for an example's resource: the one bound to it,
// else the first one of its type (which is then bound for this example).
func (x *cliRun) resolve(typ, id string) (string, error) {
	if typ == ivs.TypeChannel {
		return testChannel, nil
	}
	key := typ + "/" + id
	if v, ok := x.lookup(key); ok {
		return v, nil
	}
	x.r.mu.Lock()
	p := x.r.primary[typ]
	x.r.mu.Unlock()
	if p == "" {
		return "", fmt.Errorf("no %s was created to stand for the example's %s", typ, key)
	}
	x.local[key] = p
	return p, nil
}

func (x *cliRun) lookup(key string) (string, bool) {
	if v, ok := x.local[key]; ok {
		return v, true
	}
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	v, ok := x.r.bound[key]
	return v, ok
}

// resolveARN maps a whole example ARN.
func (x *cliRun) resolveARN(arn string) (string, error) {
	m := arnTail.FindStringSubmatch(arn)
	if m == nil {
		return "", fmt.Errorf("%q is not an ARN", arn)
	}
	return x.resolve(m[1], m[2])
}

// substitute puts our ARNs in place of the example's, and the output of
// `cat FILE` in place of the command substitution.
func (x *cliRun) substitute(args []string) ([]string, error) {
	out := make([]string, len(args))
	var firstErr error
	for i, a := range args {
		a = commandARN.ReplaceAllStringFunc(a, func(arn string) string {
			v, err := x.resolveARN(arn)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			return v
		})
		for strings.Contains(a, clidoc.BacktickMarker) {
			parts := strings.SplitN(a, clidoc.BacktickMarker, 3)
			if len(parts) != 3 {
				return nil, fmt.Errorf("unbalanced command substitution in %q", a)
			}
			f := strings.Fields(parts[1])
			path, ok := x.r.files[f[len(f)-1]]
			if len(f) != 2 || f[0] != "cat" || !ok {
				return nil, fmt.Errorf("command substitution `%s` is not supported", parts[1])
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			a = parts[0] + strings.TrimRight(string(b), "\n") + parts[2]
		}
		out[i] = a
	}
	return out, firstErr
}

// argValue returns the value of a --flag in the example's command.
func (x *cliRun) argValue(flag string) string {
	for i, a := range x.ex.Args {
		if a == flag && i+1 < len(x.ex.Args) {
			return x.ex.Args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// stage returns our stage for the example's --stage-arn (or --arn).
func (x *cliRun) stage() (ivs.ARN, error) {
	v := x.argValue("--stage-arn")
	if v == "" {
		v = x.argValue("--arn")
	}
	arn, err := x.resolveARN(v)
	if err != nil {
		return ivs.ARN{}, err
	}
	return ivs.ParseARN(arn)
}

var (
	timeMembers   = map[string]bool{"startTime": true, "endTime": true, "firstJoinTime": true, "eventTime": true, "expirationTime": true}
	idRE          = regexp.MustCompile(`^[A-Za-z0-9]{12}$`)
	alnumRE       = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	fingerprintRE = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2})+$`)
	streamKeyRE   = regexp.MustCompile(`^rt_` + testAccount + `_` + testRegion + `_[A-Za-z0-9]{12}_[A-Za-z0-9]+$`)
	prefixRE      = regexp.MustCompile(`^[A-Za-z0-9]{12}/[A-Za-z0-9]{12}/[A-Za-z0-9]{12}/composite$`)
)

// compare checks that ours has every member of want, with want's value
// where the value is deterministic, and records the members only ours has.
func (x *cliRun) compare(path, key string, want, got any) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			x.errorf("%s: %s, want an object like %s", orTop(path), show(got), show(want))
			return
		}
		if key == "tags" {
			if !reflect.DeepEqual(w, g) {
				x.errorf("%s: %s, want %s", path, show(got), show(want))
			}
			return
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			p := joinPath(path, k)
			gv, ok := g[k]
			switch {
			case ok:
				x.compare(p, k, w[k], gv)
			case x.step.allowMissing[k] != "":
				x.logf("%s: missing, as allowed here: %s", p, x.step.allowMissing[k])
			case replicationMembers[k]:
				x.logf("%s: missing, allowed: the server does not replicate participants", p)
			default:
				x.errorf("%s: missing (the example has %s)", p, show(w[k]))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if _, ok := w[k]; !ok {
				x.extras = append(x.extras, joinPath(path, k))
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			x.errorf("%s: %s, want a list like %s", path, show(got), show(want))
			return
		}
		if len(w) == 0 {
			return
		}
		if _, objects := w[0].(map[string]any); objects {
			x.compareItems(path, key, w[0], g)
			return
		}
		if len(g) != len(w) {
			x.errorf("%s: %s, want %s", path, show(got), show(want))
			return
		}
		for i := range w {
			x.compare(fmt.Sprintf("%s[%d]", path, i), key, w[i], g[i])
		}
	case string:
		x.compareString(path, key, w, got)
	default:
		if !reflect.DeepEqual(want, got) {
			x.errorf("%s: %s, want %s", path, show(got), show(want))
		}
	}
}

// compareItems checks that one of our list items matches the example's
// first item; lists of the examples come from accounts with other content.
func (x *cliRun) compareItems(path, key string, want any, got []any) {
	if len(got) == 0 {
		x.errorf("%s: empty, want an item like %s", path, show(want))
		return
	}
	var best *cliRun
	for i, g := range got {
		try := &cliRun{r: x.r, step: x.step, ex: x.ex, ctx: x.ctx, local: x.local}
		try.compare(fmt.Sprintf("%s[%d]", path, i), key, want, g)
		if best == nil || len(try.errs) < len(best.errs) {
			best = try
		}
		if len(try.errs) == 0 {
			break
		}
	}
	if len(best.errs) > 0 {
		x.errorf("%s: no item matches the example's first item; the closest:", path)
	}
	x.errs = append(x.errs, best.errs...)
	x.logs = append(x.logs, best.logs...)
	x.extras = append(x.extras, best.extras...)
}

func (x *cliRun) compareString(path, key, want string, got any) {
	g, ok := got.(string)
	if !ok {
		x.errorf("%s: %s, want a string like %q", path, show(got), want)
		return
	}
	check := func(ok bool, what string) {
		if !ok {
			x.errorf("%s: %q is not %s (the example has %q)", path, g, what, want)
		}
	}
	switch {
	case strings.HasPrefix(want, "arn:"):
		x.compareARN(path, want, g)
	case timeMembers[key]:
		tg, err := time.Parse(time.RFC3339Nano, g)
		check(err == nil, "an RFC 3339 time")
		if tw, werr := time.Parse(time.RFC3339Nano, want); err == nil && werr == nil && x.step.seeded && !tg.Equal(tw) {
			x.errorf("%s: %s, want %s (the time the store holds)", path, g, want)
		}
	case key == "token":
		check(strings.Count(g, ".") == 2, "a JWT")
	case key == "streamKey":
		check(streamKeyRE.MatchString(g), "a stream key rt_<account>_<region>_<id>_<secret> of this server")
	case key == "fingerprint":
		check(fingerprintRE.MatchString(g), "a colon-separated hex fingerprint")
	case key == "publicKeyMaterial":
		check(strings.TrimSpace(g) == strings.TrimSpace(x.r.pem), "the imported PEM")
	case key == "recordingPrefix":
		check(prefixRE.MatchString(g), "<stage id>/<composition id>/<destination id>/composite")
	case strings.HasSuffix(path, "endpoints."+key):
		u, err := url.Parse(g)
		check(err == nil && u.Scheme != "" && u.Host != "", "an absolute URL")
	case key == "id":
		check(idRE.MatchString(g), "a 12-character id")
	case key == "participantId" && !x.step.seeded:
		check(alnumRE.MatchString(g), "an alphanumeric participant id")
	default:
		if g != want {
			x.errorf("%s: %q, want %q", path, g, want)
		}
	}
}

func (x *cliRun) compareARN(path, want, got string) {
	key := exampleARNKey(want)
	typ, _, _ := strings.Cut(key, "/")
	if typ == ivs.TypeChannel {
		if got != testChannel {
			x.errorf("%s: %q, want the channel %q", path, got, testChannel)
		}
		return
	}
	if ours, ok := x.lookup(key); ok {
		if got != ours {
			x.errorf("%s: %q, want %q (our resource for the example's %s)", path, got, ours, want)
		}
		return
	}
	a, err := ivs.ParseARN(got)
	if err != nil || a.Type != typ || a.Region != testRegion || a.Account != testAccount || !idRE.MatchString(a.ID) {
		x.errorf("%s: %q is not an ARN of a %s of %s/%s", path, got, typ, testRegion, testAccount)
	}
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func orTop(path string) string {
	if path == "" {
		return "the output"
	}
	return path
}

func show(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

var listIndex = regexp.MustCompile(`\[\d+\]`)

// logExtras lists, per operation, the members our responses have and the
// examples do not (allowed: newer API members, Stagehand's own).
func (r *cliReplay) logExtras(t *testing.T) {
	t.Helper()
	var b strings.Builder
	for _, op := range slices.Sorted(maps.Keys(r.extras)) {
		seen := map[string]bool{}
		for _, p := range r.extras[op] {
			seen[listIndex.ReplaceAllString(p, "[]")] = true
		}
		if len(seen) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n  %s: %s", op, strings.Join(slices.Sorted(maps.Keys(seen)), ", "))
	}
	t.Logf("members of our responses that the examples do not show:%s", b.String())
}

// The error paths: the message the CLI prints comes from the error body.

var cliErrorLine = regexp.MustCompile(`An error occurred \(([A-Za-z]+)\) when calling the ([A-Za-z]+) operation: (\S.*)`)

func (r *cliReplay) unknownStage(x *cliRun) {
	unknown := "arn:aws:ivs:" + testRegion + ":" + testAccount + ":stage/AAAAAAAAAAAA"
	x.expectError(r.env, []string{"ivs-realtime", "get-stage", "--arn", unknown}, "ResourceNotFoundException", "GetStage")
}

func (r *cliReplay) wrongSecret(x *cliRun) {
	x.expectError(r.badEnv, []string{"ivs-realtime", "list-stages"}, "InvalidSignatureException", "ListStages")
}

func (x *cliRun) expectError(environ, argv []string, code, op string) {
	x.argv = argv
	stdout, stderr, err := x.r.run(x.ctx, environ, argv...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		x.errorf("the command should fail with %s; exit: %v, stdout %s", code, err, stdout)
		return
	}
	m := cliErrorLine.FindStringSubmatch(string(stderr))
	if m == nil || m[1] != code || m[2] != op {
		x.errorf("stderr %q, want An error occurred (%s) when calling the %s operation: <message>", stderr, code, op)
		return
	}
	x.logf("exit %d: %s", ee.ExitCode(), strings.TrimSpace(m[0]))
}

// Preparations: what the stage server and workers would have written, and
// the resources an example's account had.

// prepareGetStage: the example's stage is named "test" and has a session.
func (r *cliReplay) prepareGetStage(x *cliRun) error {
	want, _ := dig(x.ex.Output, "stage").(map[string]any)
	name, _ := want["name"].(string)
	st, err := r.e.client.CreateStage(x.ctx, &rt.CreateStageInput{Name: aws.String(name)})
	if err != nil {
		return err
	}
	x.local[exampleARNKey(x.argValue("--arn"))] = *st.Stage.Arn
	session, _ := want["activeSessionId"].(string)
	return r.startSession(x.ctx, *st.Stage.Arn, session)
}

// prepareListStages: the example's first stage has a session.
func (r *cliReplay) prepareListStages(x *cliRun) error {
	first := firstItem(x.ex.Output, "stages")
	arn, err := x.resolveARN(str(first["arn"]))
	if err != nil {
		return err
	}
	return r.startSession(x.ctx, arn, str(first["activeSessionId"]))
}

// startSession writes a running session as the stage server does when the
// first participant joins.
func (r *cliReplay) startSession(ctx context.Context, stageARN, session string) error {
	a, _ := ivs.ParseARN(stageARN)
	if err := r.e.store.Sessions.Put(ctx, a.ID+"."+session, ivs.StageSession{SessionID: session, StartTime: time.Now().UTC().Truncate(time.Millisecond)}); err != nil {
		return err
	}
	_, err := r.e.store.Stages.Update(ctx, a.ID, func(s *ivs.Stage) error {
		s.ActiveSessionID = session
		return nil
	})
	return err
}

// endSession ends the stage's session, as the stage server does when the
// last participant leaves: IVS refuses to change the recording
// configuration of a stage that records a running session.
func (r *cliReplay) endSession(x *cliRun) error {
	a, err := x.stage()
	if err != nil {
		return err
	}
	if _, err := r.e.store.Stages.Update(x.ctx, a.ID, func(s *ivs.Stage) error {
		s.ActiveSessionID = ""
		return nil
	}); err != nil {
		return err
	}
	ss, err := r.e.store.Sessions.Keys(x.ctx, a.ID+".")
	if err != nil {
		return err
	}
	for _, k := range ss {
		if _, err := r.e.store.Sessions.Update(x.ctx, k, func(s *ivs.StageSession) error {
			if s.EndTime == nil {
				now := time.Now().UTC().Truncate(time.Millisecond)
				s.EndTime = &now
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func firstItem(output any, list string) map[string]any {
	items, _ := dig(output, list).([]any)
	if len(items) == 0 {
		return nil
	}
	m, _ := items[0].(map[string]any)
	return m
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// prepareListEncoders creates the example account's first encoder
// configuration.
func (r *cliReplay) prepareListEncoders(x *cliRun) error {
	first := firstItem(x.ex.Output, "encoderConfigurations")
	c, err := r.e.client.CreateEncoderConfiguration(x.ctx, &rt.CreateEncoderConfigurationInput{Name: aws.String(str(first["name"]))})
	if err != nil {
		return err
	}
	x.local[exampleARNKey(str(first["arn"]))] = *c.EncoderConfiguration.Arn
	return nil
}

func (r *cliReplay) prepareListStorage(x *cliRun) error {
	first := firstItem(x.ex.Output, "storageConfigurations")
	c, err := r.e.client.CreateStorageConfiguration(x.ctx, &rt.CreateStorageConfigurationInput{
		Name: aws.String(str(first["name"])),
		S3:   &types.S3StorageConfiguration{BucketName: aws.String(str(dig(first, "s3", "bucketName")))},
	})
	if err != nil {
		return err
	}
	x.local[exampleARNKey(str(first["arn"]))] = *c.StorageConfiguration.Arn
	return nil
}

func (r *cliReplay) prepareListIngest(x *cliRun) error {
	first := firstItem(x.ex.Output, "ingestConfigurations")
	stage, err := x.resolveARN(str(first["stageArn"]))
	if err != nil {
		return err
	}
	c, err := r.e.client.CreateIngestConfiguration(x.ctx, &rt.CreateIngestConfigurationInput{
		Name: aws.String(str(first["name"])), StageArn: aws.String(stage), UserId: aws.String(str(first["userId"])),
		IngestProtocol: types.IngestProtocol(str(first["ingestProtocol"])),
	})
	if err != nil {
		return err
	}
	x.local[exampleARNKey(str(first["arn"]))] = *c.IngestConfiguration.Arn
	return nil
}

// seedSessions writes the example's sessions under our stage.
func (r *cliReplay) seedSessions(x *cliRun) error {
	a, err := x.stage()
	if err != nil {
		return err
	}
	sessions, _ := dig(x.ex.Output, "stageSessions").([]any)
	if s := dig(x.ex.Output, "stageSession"); s != nil {
		sessions = append(sessions, s)
	}
	for _, s := range sessions {
		var ss ivs.StageSession
		if err := remarshal(s, &ss); err != nil {
			return err
		}
		if err := r.e.store.Sessions.Put(x.ctx, a.ID+"."+ss.SessionID, ss); err != nil {
			return err
		}
	}
	return nil
}

// seedParticipants writes the example's participants into the example's
// session, as the stage server records them.
func (r *cliReplay) seedParticipants(x *cliRun) error {
	a, err := x.stage()
	if err != nil {
		return err
	}
	ps, _ := dig(x.ex.Output, "participants").([]any)
	if p := dig(x.ex.Output, "participant"); p != nil {
		ps = append(ps, p)
	}
	for _, p := range ps {
		var pp ivs.Participant
		if err := remarshal(p, &pp); err != nil {
			return err
		}
		if pp.Attributes == nil {
			pp.Attributes = map[string]string{}
		}
		if pp.Protocol == "" {
			pp.Protocol = "WHIP"
		}
		if pp.ReplicationType == "" {
			pp.ReplicationType = "NONE"
		}
		if err := r.e.store.Participants.Put(x.ctx, a.ID+"."+x.argValue("--session-id")+"."+pp.ParticipantID, pp); err != nil {
			return err
		}
	}
	return nil
}

// seedEvents replaces the participant's events with the example's.
func (r *cliReplay) seedEvents(x *cliRun) error {
	a, err := x.stage()
	if err != nil {
		return err
	}
	prefix := a.ID + "." + x.argValue("--session-id") + "." + x.argValue("--participant-id") + "."
	old, err := r.e.store.Events.Keys(x.ctx, prefix)
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := r.e.store.Events.Delete(x.ctx, k); err != nil {
			return err
		}
	}
	events, _ := dig(x.ex.Output, "events").([]any)
	for i, ev := range events {
		var e ivs.Event
		if err := remarshal(ev, &e); err != nil {
			return err
		}
		// Sortable by time; the sequence keeps events of the same instant apart.
		key := prefix + e.EventTime.UTC().Format("20060102150405.000000000") + fmt.Sprintf("%03d", i)
		if err := r.e.store.Events.Put(x.ctx, key, e); err != nil {
			return err
		}
	}
	return nil
}

func remarshal(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

// prepareDisconnect listens where the stage server would hear the
// disconnect, and checks the message and the revocation afterwards.
func (r *cliReplay) prepareDisconnect(x *cliRun) error {
	a, err := x.stage()
	if err != nil {
		return err
	}
	sub, err := r.e.nc.SubscribeSync(stagesignal.DisconnectSubject(a.ID))
	if err != nil {
		return err
	}
	pid := x.argValue("--participant-id")
	x.after = append(x.after, func(any) {
		defer func() { _ = sub.Unsubscribe() }()
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			x.errorf("no disconnect message reached the stage server: %v", err)
			return
		}
		var d stagesignal.Disconnect
		if err := json.Unmarshal(msg.Data, &d); err != nil || d.ParticipantID != pid {
			x.errorf("disconnect message %s, want participant %s", msg.Data, pid)
		}
		if _, err := r.e.store.Revocations.Get(x.ctx, a.ID+"."+pid); err != nil {
			x.errorf("participant %s not revoked: %v", pid, err)
		}
	})
	return nil
}

// getCompositionSource says which start-composition example made the
// composition each get-composition example shows: their ARNs are reused
// across examples, their contents are not.
var getCompositionSource = map[int]int{
	1: 3, // grid with default settings (thumbnails are extra here)
	2: 2, // PiP
	3: 3, // thumbnails
}

func (r *cliReplay) prepareGetComposition(x *cliRun) error {
	src, ok := getCompositionSource[x.ex.Index]
	if !ok {
		return fmt.Errorf("no start-composition example is known to match get-composition example %d", x.ex.Index)
	}
	r.mu.Lock()
	arn := r.created[fmt.Sprintf("start-composition.rst#%d", src)]
	r.mu.Unlock()
	if arn == "" {
		return fmt.Errorf("start-composition example %d made no composition", src)
	}
	x.local[exampleARNKey(x.argValue("--arn"))] = arn
	return r.runComposition(x.ctx, arn, dig(x.ex.Output, "composition"))
}

func (r *cliReplay) prepareListCompositions(x *cliRun) error {
	first := firstItem(x.ex.Output, "compositions")
	arn, err := x.resolveARN(str(first["arn"]))
	if err != nil {
		return err
	}
	return r.runComposition(x.ctx, arn, first)
}

// runComposition gives a composition and its destinations the states and
// start times of the example, as a worker running it records them.
func (r *cliReplay) runComposition(ctx context.Context, arn string, example any) error {
	var want struct {
		State        string `json:"state"`
		Destinations []struct {
			State     string     `json:"state"`
			StartTime *time.Time `json:"startTime"`
		} `json:"destinations"`
	}
	if err := remarshal(example, &want); err != nil {
		return err
	}
	a, _ := ivs.ParseARN(arn)
	_, err := r.e.store.Compositions.Update(ctx, a.ID, func(c *ivs.Composition) error {
		c.State = want.State
		for i, d := range want.Destinations {
			if i < len(c.Destinations) {
				c.Destinations[i].State = d.State
				c.Destinations[i].StartTime = d.StartTime
			}
		}
		return nil
	})
	return err
}

func (r *cliReplay) prepareStopComposition(x *cliRun) error {
	arn, err := x.resolveARN(x.argValue("--arn"))
	if err != nil {
		return err
	}
	x.after = append(x.after, func(any) {
		c, err := r.e.client.GetComposition(x.ctx, &rt.GetCompositionInput{Arn: aws.String(arn)})
		if err != nil {
			x.errorf("GetComposition after the stop: %v", err)
			return
		}
		// No worker runs it, so it stops at once.
		if c.Composition.State != types.CompositionStateStopped || c.Composition.EndTime == nil {
			x.errorf("after the stop the composition is %s (endTime %v), want STOPPED with an endTime", c.Composition.State, c.Composition.EndTime)
		}
	})
	return nil
}

// createIngest creates the ingest configuration of create-ingest-configuration's
// example with the Go SDK, and binds the example's ARN to it.
func (r *cliReplay) createIngest(x *cliRun) error {
	want, _ := dig(x.ex.Output, "ingestConfiguration").(map[string]any)
	c, err := r.e.client.CreateIngestConfiguration(x.ctx, &rt.CreateIngestConfigurationInput{
		Name: aws.String(str(want["name"])), IngestProtocol: types.IngestProtocol(str(want["ingestProtocol"]))})
	if err != nil {
		return err
	}
	x.recordCreated(map[string]any{"ingestConfiguration": map[string]any{"arn": *c.IngestConfiguration.Arn}})
	return nil
}

// prepareDeleteIngest: the first example deletes an inactive configuration
// (ours from create-ingest-configuration); the second force-deletes an
// active one, which needs one of its own, made ACTIVE as the stage server
// does while an encoder publishes.
func (r *cliReplay) prepareDeleteIngest(x *cliRun) error {
	if slices.Contains(x.ex.Args, "--force") {
		c, err := r.e.client.CreateIngestConfiguration(x.ctx, &rt.CreateIngestConfigurationInput{
			Name: aws.String("publishing"), IngestProtocol: types.IngestProtocolRtmps})
		if err != nil {
			return err
		}
		a, _ := ivs.ParseARN(*c.IngestConfiguration.Arn)
		if _, err := r.e.store.IngestConfigurations.Update(x.ctx, a.ID, func(c *ivs.IngestConfiguration) error {
			c.State = "ACTIVE"
			return nil
		}); err != nil {
			return err
		}
		x.local[exampleARNKey(x.argValue("--arn"))] = a.String()
	}
	return r.expectGone(x)
}

// prepareDeleteStorage deletes the stages that still record to the
// storage configuration (those of create-stage's examples 2 and 3): IVS
// refuses to delete a storage configuration in use.
func (r *cliReplay) prepareDeleteStorage(x *cliRun) error {
	arn, err := x.resolveARN(x.argValue("--arn"))
	if err != nil {
		return err
	}
	stages, _, err := r.e.store.Stages.Page(x.ctx, "", "", -1, func(s ivs.Stage) bool {
		return s.AutoParticipantRecordingConfiguration.StorageConfigurationARN == arn
	})
	if err != nil {
		return err
	}
	for _, s := range stages {
		if _, err := r.e.client.DeleteStage(x.ctx, &rt.DeleteStageInput{Arn: aws.String(s.Value.ARN)}); err != nil {
			return err
		}
	}
	x.logf("deleted %d stage(s) recording to the storage configuration first", len(stages))
	return r.expectGone(x)
}

// expectGone checks after a delete that the resource is gone from the store.
func (r *cliReplay) expectGone(x *cliRun) error {
	arn, err := x.resolveARN(x.argValue("--arn"))
	if err != nil {
		return err
	}
	a, _ := ivs.ParseARN(arn)
	x.after = append(x.after, func(any) {
		var err error
		switch a.Type {
		case ivs.TypeStage:
			_, err = r.e.store.Stages.Get(x.ctx, a.ID)
		case ivs.TypeEncoderConfiguration:
			_, err = r.e.store.EncoderConfigurations.Get(x.ctx, a.ID)
		case ivs.TypeStorageConfiguration:
			_, err = r.e.store.StorageConfigurations.Get(x.ctx, a.ID)
		case ivs.TypeIngestConfiguration:
			_, err = r.e.store.IngestConfigurations.Get(x.ctx, a.ID)
		case ivs.TypePublicKey:
			_, err = r.e.store.PublicKeys.Get(x.ctx, a.ID)
		}
		if !errors.Is(err, store.ErrNotFound) {
			x.errorf("%s is still in the store after the delete (%v)", arn, err)
		}
	})
	return nil
}
