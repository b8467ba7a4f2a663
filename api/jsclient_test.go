package api

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
)

// jsSummary is what testdata/jsclient/smoke.mjs prints: what the AWS SDK
// for JavaScript v3 made of the server's responses.
type jsSummary struct {
	CreateStage struct {
		ARN    string            `json:"arn"`
		Name   string            `json:"name"`
		Tags   map[string]string `json:"tags"`
		Tokens int               `json:"tokens"`
		Token  *struct {
			UserID               string            `json:"userId"`
			Capabilities         []string          `json:"capabilities"`
			Duration             int               `json:"duration"`
			Attributes           map[string]string `json:"attributes"`
			ParticipantID        string            `json:"participantId"`
			HasToken             bool              `json:"hasToken"`
			ExpirationTimeIsDate bool              `json:"expirationTimeIsDate"`
		} `json:"token"`
	} `json:"createStage"`
	GetStage struct {
		ARN       string                                    `json:"arn"`
		Name      string                                    `json:"name"`
		Recording ivs.AutoParticipantRecordingConfiguration `json:"recording"`
		Endpoints ivs.StageEndpoints                        `json:"endpoints"`
	} `json:"getStage"`
	ListStages struct {
		ARNs []string `json:"arns"`
	} `json:"listStages"`
	Encoder struct {
		ARN   string    `json:"arn"`
		Video ivs.Video `json:"video"`
	} `json:"encoder"`
	Storage struct {
		ARN string                     `json:"arn"`
		S3  ivs.S3StorageConfiguration `json:"s3"`
	} `json:"storage"`
	StartComposition struct {
		ARN             string                  `json:"arn"`
		State           string                  `json:"state"`
		Layout          ivs.LayoutConfiguration `json:"layout"`
		Destinations    int                     `json:"destinations"`
		StartTimeIsDate bool                    `json:"startTimeIsDate"`
	} `json:"startComposition"`
	GetComposition struct {
		ARN          string                  `json:"arn"`
		StageARN     string                  `json:"stageArn"`
		State        string                  `json:"state"`
		Layout       ivs.LayoutConfiguration `json:"layout"`
		Destinations []struct {
			State           string                               `json:"state"`
			Channel         *ivs.ChannelDestinationConfiguration `json:"channel"`
			S3              *ivs.S3DestinationConfiguration      `json:"s3"`
			RecordingPrefix string                               `json:"recordingPrefix"`
		} `json:"destinations"`
	} `json:"getComposition"`
	Tags struct {
		AfterTag   map[string]string `json:"afterTag"`
		AfterUntag map[string]string `json:"afterUntag"`
	} `json:"tags"`
	NotFound struct {
		Succeeded bool   `json:"succeeded"`
		Name      string `json:"name"`
		Message   string `json:"message"`
		Status    int    `json:"status"`
		Fault     string `json:"fault"`
	} `json:"notFound"`
}

// TestJavaScriptSDK runs testdata/jsclient/smoke.mjs, which drives the
// server with the AWS SDK for JavaScript v3 (@aws-sdk/client-ivs-realtime,
// pinned in package-lock.json): stages and tokens, configurations, a
// composition whose layout carries explicit zeros, tags and a modeled error.
func TestJavaScriptSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("Node.js (node) is needed for the AWS SDK for JavaScript test")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is needed to install the AWS SDK for JavaScript")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "jsclient"))
	if err != nil {
		t.Fatal(err)
	}
	installJSClient(t, npm, dir)

	e := newEnv(t)
	unknown := "arn:aws:ivs:" + testRegion + ":" + testAccount + ":stage/AAAAAAAAAAAA"
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "smoke.mjs")
	cmd.Dir = dir
	cmd.Env = append(isolatedEnv(t),
		"STAGEHAND_ENDPOINT="+e.url,
		"STAGEHAND_REGION="+testRegion,
		"STAGEHAND_ACCESS_KEY_ID="+testKeyID,
		"STAGEHAND_SECRET_ACCESS_KEY="+testSecret,
		"STAGEHAND_CHANNEL_ARN="+testChannel,
		"STAGEHAND_UNKNOWN_STAGE_ARN="+unknown,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("node smoke.mjs: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	var s jsSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("smoke.mjs printed no JSON summary: %v\n%s", err, stdout.String())
	}
	t.Logf("summary: %s", stdout.String())

	arnOf := func(typ string) *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws:ivs:` + testRegion + `:` + testAccount + `:` + typ + `/[A-Za-z0-9]{12}$`)
	}
	stageARN := s.CreateStage.ARN
	checks := []struct {
		what string
		ok   bool
		got  any
	}{
		{"CreateStage arn", arnOf(ivs.TypeStage).MatchString(stageARN), stageARN},
		{"CreateStage name", s.CreateStage.Name == "js-stage", s.CreateStage.Name},
		{"CreateStage tags", reflect.DeepEqual(s.CreateStage.Tags, map[string]string{"sdk": "javascript"}), s.CreateStage.Tags},
		{"CreateStage participant tokens", s.CreateStage.Tokens == 1 && s.CreateStage.Token != nil, s.CreateStage.Tokens},
		{"GetStage arn and name", s.GetStage.ARN == stageARN && s.GetStage.Name == "js-stage", s.GetStage},
		{"GetStage recording defaults", reflect.DeepEqual(s.GetStage.Recording, ivs.DefaultAutoParticipantRecording()), s.GetStage.Recording},
		{"GetStage endpoints", s.GetStage.Endpoints == e.srv.cfg.Endpoints, s.GetStage.Endpoints},
		{"ListStages has the stage", slices.Contains(s.ListStages.ARNs, stageARN), s.ListStages.ARNs},
		{"CreateEncoderConfiguration arn", arnOf(ivs.TypeEncoderConfiguration).MatchString(s.Encoder.ARN), s.Encoder.ARN},
		// bitrate was not given: the default 2,500,000 bps.
		{"CreateEncoderConfiguration video", s.Encoder.Video == ivs.Video{Width: 1920, Height: 1080, Framerate: 30, Bitrate: 2500000}, s.Encoder.Video},
		{"CreateStorageConfiguration", arnOf(ivs.TypeStorageConfiguration).MatchString(s.Storage.ARN) && s.Storage.S3.BucketName == "js-recordings", s.Storage},
		{"StartComposition arn", arnOf(ivs.TypeComposition).MatchString(s.StartComposition.ARN), s.StartComposition.ARN},
		{"StartComposition state", s.StartComposition.State == ivs.CompositionStarting, s.StartComposition.State},
		{"StartComposition startTime is a Date", s.StartComposition.StartTimeIsDate, s.StartComposition.StartTimeIsDate},
		{"StartComposition destinations", s.StartComposition.Destinations == 2, s.StartComposition.Destinations},
		{"StartComposition gridGap 0 (sent explicitly)", s.StartComposition.Layout.Grid != nil && s.StartComposition.Layout.Grid.GridGap == 0, s.StartComposition.Layout},
		{"GetComposition arn and stage", s.GetComposition.ARN == s.StartComposition.ARN && s.GetComposition.StageARN == stageARN, s.GetComposition},
		{"GetComposition state", s.GetComposition.State == ivs.CompositionStarting, s.GetComposition.State},
		{"GetComposition destinations", len(s.GetComposition.Destinations) == 2, s.GetComposition.Destinations},
		{"Tags after TagResource", reflect.DeepEqual(s.Tags.AfterTag, map[string]string{"sdk": "javascript", "team": "media", "env": "test"}), s.Tags.AfterTag},
		{"Tags after UntagResource", reflect.DeepEqual(s.Tags.AfterUntag, map[string]string{"team": "media"}), s.Tags.AfterUntag},
		{"GetStage of an unknown ARN fails", !s.NotFound.Succeeded, s.NotFound},
		{"error name", s.NotFound.Name == "ResourceNotFoundException", s.NotFound.Name},
		{"error message", strings.TrimSpace(s.NotFound.Message) != "" && s.NotFound.Message != "UnknownError", s.NotFound.Message},
		{"error HTTP status", s.NotFound.Status == 404, s.NotFound.Status},
		{"error fault", s.NotFound.Fault == "client", s.NotFound.Fault},
	}
	if tok := s.CreateStage.Token; tok != nil {
		checks = append(checks, []struct {
			what string
			ok   bool
			got  any
		}{
			{"token userId", tok.UserID == "js-user", tok.UserID},
			{"token capabilities", slices.Equal(tok.Capabilities, []string{"PUBLISH"}), tok.Capabilities},
			{"token duration", tok.Duration == 60, tok.Duration},
			{"token attributes", reflect.DeepEqual(tok.Attributes, map[string]string{"seat": "1"}), tok.Attributes},
			{"token participantId", tok.ParticipantID != "", tok.ParticipantID},
			{"token is a JWT", tok.HasToken, tok.HasToken},
			{"token expirationTime is a Date", tok.ExpirationTimeIsDate, tok.ExpirationTimeIsDate},
		}...)
	}
	if g := s.GetComposition.Layout.Grid; g == nil || g.GridGap != 0 {
		t.Errorf("GetComposition layout %s: want a grid with gridGap 0, as StartComposition sent it (not the default 2)", show(s.GetComposition.Layout))
	} else if g.VideoAspectRatio != "VIDEO" || g.OmitStoppedVideo || g.FeaturedParticipantAttribute != "" {
		t.Errorf("GetComposition grid %+v: want the other grid defaults (videoAspectRatio VIDEO)", *g)
	}
	for _, d := range s.GetComposition.Destinations {
		switch {
		case d.Channel != nil:
			if d.Channel.ChannelARN != testChannel || d.Channel.EncoderConfigurationARN != s.Encoder.ARN {
				t.Errorf("channel destination %+v: want %s with encoder %s", *d.Channel, testChannel, s.Encoder.ARN)
			}
		case d.S3 != nil:
			if d.S3.StorageConfigurationARN != s.Storage.ARN || !slices.Equal(d.S3.EncoderConfigurationARNs, []string{s.Encoder.ARN}) ||
				d.S3.RecordingConfiguration.Format != "HLS" || d.S3.RecordingConfiguration.HLSConfiguration.TargetSegmentDurationSeconds != defaultCompositeSegmentSeconds || d.RecordingPrefix == "" {
				t.Errorf("s3 destination %s (prefix %q): want storage %s, encoder %s, HLS of %d s segments and a recording prefix",
					show(d.S3), d.RecordingPrefix, s.Storage.ARN, s.Encoder.ARN, defaultCompositeSegmentSeconds)
			}
		default:
			t.Errorf("destination with neither channel nor s3: %+v", d)
		}
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %s", c.what, show(c.got))
		}
	}
}

// installJSClient installs the SDK into dir/node_modules unless it is
// there: npm ci from the committed package-lock.json, or npm install. A
// failing install fails the test: npm is there, so the SDK should be too.
func installJSClient(t *testing.T, npm, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@aws-sdk", "client-ivs-realtime", "package.json")); err == nil {
		return
	}
	args := []string{"install", "--no-audit", "--no-fund"}
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil {
		args = []string{"ci", "--no-audit", "--no-fund"}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm %s in %s: %v\n%s", strings.Join(args, " "), dir, err, tail(out))
	}
	t.Logf("npm %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}

// isolatedEnv is the environment without the machine's AWS settings, with a
// fresh HOME, so that no profile, region or credential of the machine leaks
// into an SDK.
func isolatedEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+t.TempDir())
}
