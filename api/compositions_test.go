package api

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
)

// compositionFixture is a stage with an encoder and a storage configuration.
type compositionFixture struct {
	stage, encoder, storage string
}

func newCompositionFixture(t testing.TB, e *env) compositionFixture {
	t.Helper()
	st, err := e.client.CreateStage(e.ctx, &rt.CreateStageInput{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := e.client.CreateEncoderConfiguration(e.ctx, &rt.CreateEncoderConfigurationInput{Name: aws.String("hd")})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := e.client.CreateStorageConfiguration(e.ctx, &rt.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String("recordings")}})
	if err != nil {
		t.Fatal(err)
	}
	return compositionFixture{*st.Stage.Arn, *enc.EncoderConfiguration.Arn, *sc.StorageConfiguration.Arn}
}

func (f compositionFixture) s3() types.DestinationConfiguration {
	return types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{
		StorageConfigurationArn: aws.String(f.storage), EncoderConfigurationArns: []string{f.encoder}}}
}

func TestStartComposition(t *testing.T) {
	e := newEnv(t)
	f := newCompositionFixture(t, e)
	out, err := e.client.StartComposition(e.ctx, &rt.StartCompositionInput{
		StageArn: aws.String(f.stage),
		Destinations: []types.DestinationConfiguration{
			{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(testChannel), EncoderConfigurationArn: aws.String(f.encoder)}},
			f.s3(),
		},
		Layout: &types.LayoutConfiguration{Pip: &types.PipConfiguration{PipParticipantAttribute: aws.String("guest"), PipPosition: types.PipPositionTopLeft}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Composition
	if c.State != types.CompositionStateStarting || *c.StageArn != f.stage || c.StartTime == nil || len(c.Destinations) != 2 {
		t.Fatalf("composition %+v", c)
	}
	pip := c.Layout.Pip
	if pip == nil || pip.PipPosition != types.PipPositionTopLeft || pip.PipBehavior != types.PipBehaviorStatic ||
		pip.GridGap != 0 || pip.VideoFillMode != types.VideoFillModeCover || *pip.PipParticipantAttribute != "guest" {
		t.Errorf("layout defaults %+v", pip)
	}
	s3 := c.Destinations[1]
	prefix := arnID(f.stage) + "/" + arnID(*c.Arn) + "/" + *s3.Id + "/composite"
	if s3.Detail == nil || *s3.Detail.S3.RecordingPrefix != prefix {
		t.Errorf("recording prefix %+v, want %s", s3.Detail, prefix)
	}
	rc := s3.Configuration.S3.RecordingConfiguration
	if rc.Format != types.RecordingConfigurationFormatHls || *rc.HlsConfiguration.TargetSegmentDurationSeconds != 2 {
		t.Errorf("recording configuration defaults %+v", rc)
	}
	if !regexp.MustCompile(`^[a-zA-Z0-9]{12}$`).MatchString(*s3.Id) || s3.State != types.DestinationStateStarting {
		t.Errorf("destination %+v", s3)
	}

	// The job is on the queue for a worker.
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	claim, err := e.queue.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if claim.Job.Name != *c.Arn || claim.Job.StageARN != f.stage {
		t.Fatalf("job %+v", claim.Job)
	}
	_ = claim.Done(ctx)

	// The grid echoes every default when the layout is omitted.
	grid, err := e.client.StartComposition(e.ctx, &rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{f.s3()}})
	if err != nil {
		t.Fatal(err)
	}
	g := grid.Composition.Layout.Grid
	if g == nil || g.GridGap != 2 || g.VideoAspectRatio != types.VideoAspectRatioVideo || g.VideoFillMode != "" || *g.FeaturedParticipantAttribute != "" {
		t.Errorf("grid defaults %+v", g)
	}

	list, err := e.client.ListCompositions(e.ctx, &rt.ListCompositionsInput{FilterByStageArn: aws.String(f.stage)})
	if err != nil || len(list.Compositions) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	byEnc, err := e.client.ListCompositions(e.ctx, &rt.ListCompositionsInput{FilterByEncoderConfigurationArn: aws.String(f.encoder)})
	if err != nil || len(byEnc.Compositions) != 2 || len(byEnc.Compositions[0].Destinations) == 0 {
		t.Fatalf("list by encoder %+v %v", byEnc, err)
	}

	// An encoder configuration in use cannot go.
	_, err = e.client.DeleteEncoderConfiguration(e.ctx, &rt.DeleteEncoderConfigurationInput{Arn: aws.String(f.encoder)})
	wantAPIError(t, err, "ConflictException", "composition")

	// Nobody claimed the second: it stops at once.
	if _, err := e.client.StopComposition(e.ctx, &rt.StopCompositionInput{Arn: grid.Composition.Arn}); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.GetComposition(e.ctx, &rt.GetCompositionInput{Arn: grid.Composition.Arn})
	if err != nil {
		t.Fatal(err)
	}
	if got.Composition.State != types.CompositionStateStopped || got.Composition.EndTime == nil || got.Composition.Destinations[0].State != types.DestinationStateStopped {
		t.Errorf("after stop: %+v", got.Composition)
	}
	stopped, err := e.queue.WatchStop(ctx, *grid.Composition.Arn)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("no stop signal reached the queue")
	}
}

func TestStartCompositionRefusals(t *testing.T) {
	e := newEnv(t)
	f := newCompositionFixture(t, e)
	missingEnc := "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/AAAAAAAAAAAA"
	cases := []struct {
		name   string
		in     rt.StartCompositionInput
		code   string
		fields []string
	}{
		{"unknown stage", rt.StartCompositionInput{StageArn: aws.String("arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"), Destinations: []types.DestinationConfiguration{f.s3()}}, "ResourceNotFoundException", []string{"stage"}},
		{"unknown encoder", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: aws.String(f.storage), EncoderConfigurationArns: []string{missingEnc}}}}}, "ResourceNotFoundException", []string{"AAAAAAAAAAAA"}},
		{"unknown storage", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: aws.String("arn:aws:ivs:us-east-1:123456789012:storage-configuration/AAAAAAAAAAAA"), EncoderConfigurationArns: []string{f.encoder}}}}}, "ResourceNotFoundException", []string{"storage-configuration"}},
		{"unknown channel", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{{Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String("arn:aws:ivs:us-east-1:123456789012:channel/ZZZZZZZZZZZZ")}}}}, "ResourceNotFoundException", []string{"channel", "--channel"}},
		{"no destinations", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{}}, "ValidationException", []string{"destinations"}},
		{"both kinds in one", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{{S3: f.s3().S3, Channel: &types.ChannelDestinationConfiguration{ChannelArn: aws.String(testChannel)}}}}, "ValidationException", []string{"exactly one of channel or s3"}},
		{"two s3", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{f.s3(), f.s3()}}, "ValidationException", []string{"at most one"}},
		{"segment 11 s", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: aws.String(f.storage), EncoderConfigurationArns: []string{f.encoder},
			RecordingConfiguration: &types.RecordingConfiguration{HlsConfiguration: &types.CompositionRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(11)}}}}}}, "ValidationException", []string{"targetSegmentDurationSeconds"}},
		{"two encoders", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{{S3: &types.S3DestinationConfiguration{StorageConfigurationArn: aws.String(f.storage), EncoderConfigurationArns: []string{f.encoder, f.encoder}}}}}, "ValidationException", []string{"encoderConfigurationArns"}},
		{"grid and pip", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{f.s3()}, Layout: &types.LayoutConfiguration{Grid: &types.GridConfiguration{}, Pip: &types.PipConfiguration{}}}, "ValidationException", []string{"layout", "exactly one of grid or pip"}},
		{"bad pip", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{f.s3()}, Layout: &types.LayoutConfiguration{Pip: &types.PipConfiguration{PipWidth: aws.Int32(0), PipPosition: "MIDDLE"}}}, "ValidationException", []string{"layout.pip.pipWidth", "layout.pip.pipPosition"}},
		{"bad idempotency token", rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{f.s3()}, IdempotencyToken: aws.String("has space")}, "ValidationException", []string{"idempotencyToken"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.StartComposition(e.ctx, &tc.in)
			wantAPIError(t, err, tc.code, tc.fields...)
		})
	}
	// Nothing was created, nothing was queued.
	list, err := e.client.ListCompositions(e.ctx, &rt.ListCompositionsInput{})
	if err != nil || len(list.Compositions) != 0 {
		t.Fatalf("after refusals: %+v %v", list, err)
	}
	stats, err := e.queue.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Stored != 0 {
		t.Fatalf("%d jobs queued by refused requests", stats.Stored)
	}
}

func TestStartCompositionIdempotency(t *testing.T) {
	e := newEnv(t)
	f := newCompositionFixture(t, e)
	in := &rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{f.s3()}, IdempotencyToken: aws.String("retry-1")}
	first, err := e.client.StartComposition(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.client.StartComposition(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if *first.Composition.Arn != *again.Composition.Arn {
		t.Fatalf("retry created %s besides %s", *again.Composition.Arn, *first.Composition.Arn)
	}
	// Without a token the SDK fills in a fresh UUID: two compositions.
	a, err := e.client.StartComposition(e.ctx, &rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{f.s3()}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.client.StartComposition(e.ctx, &rt.StartCompositionInput{StageArn: aws.String(f.stage), Destinations: []types.DestinationConfiguration{f.s3()}})
	if err != nil {
		t.Fatal(err)
	}
	if *a.Composition.Arn == *b.Composition.Arn {
		t.Fatal("SDK-generated tokens collapsed two requests")
	}
	stats, err := e.queue.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Stored != 3 {
		t.Fatalf("%d jobs queued, want 3", stats.Stored)
	}
}
