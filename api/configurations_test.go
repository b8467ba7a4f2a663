package api

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/ivs"
)

func TestEncoderConfigurations(t *testing.T) {
	e := newEnv(t)
	c := e.client

	def, err := c.CreateEncoderConfiguration(e.ctx, &rt.CreateEncoderConfigurationInput{})
	if err != nil {
		t.Fatal(err)
	}
	got := def.EncoderConfiguration
	if v := got.Video; *v.Width != 1280 || *v.Height != 720 || *v.Framerate != 30 || *v.Bitrate != 2_500_000 {
		t.Errorf("defaults = %dx%d %v fps %d bps, want 1280x720 30 fps 2500000", *v.Width, *v.Height, *v.Framerate, *v.Bitrate)
	}
	if !regexp.MustCompile(`^arn:aws:ivs:us-east-1:123456789012:encoder-configuration/[a-zA-Z0-9]{12}$`).MatchString(*got.Arn) {
		t.Errorf("arn = %s", *got.Arn)
	}
	if *got.Name != "" || got.Tags == nil {
		t.Errorf("name %q tags %v, want \"\" and {}", *got.Name, got.Tags)
	}

	hd, err := c.CreateEncoderConfiguration(e.ctx, &rt.CreateEncoderConfigurationInput{
		Name:  aws.String("hd-1080"),
		Video: &types.Video{Width: aws.Int32(1920), Height: aws.Int32(1080), Framerate: aws.Float32(60), Bitrate: aws.Int32(8_500_000)},
		Tags:  map[string]string{"team": "video"},
	})
	if err != nil {
		t.Fatal(err)
	}
	read, err := c.GetEncoderConfiguration(e.ctx, &rt.GetEncoderConfigurationInput{Arn: hd.EncoderConfiguration.Arn})
	if err != nil {
		t.Fatal(err)
	}
	if v := read.EncoderConfiguration.Video; *v.Width != 1920 || *v.Height != 1080 || *v.Framerate != 60 || *v.Bitrate != 8_500_000 || *read.EncoderConfiguration.Name != "hd-1080" || read.EncoderConfiguration.Tags["team"] != "video" {
		t.Errorf("read back %+v", read.EncoderConfiguration)
	}

	bad := []struct {
		name   string
		in     rt.CreateEncoderConfigurationInput
		fields []string
	}{
		{"odd width", rt.CreateEncoderConfigurationInput{Video: &types.Video{Width: aws.Int32(1281)}}, []string{"video.width", "even"}},
		{"too many pixels", rt.CreateEncoderConfigurationInput{Video: &types.Video{Width: aws.Int32(1920), Height: aws.Int32(1920)}}, []string{"2073600"}},
		{"framerate", rt.CreateEncoderConfigurationInput{Video: &types.Video{Framerate: aws.Float32(61)}}, []string{"video.framerate"}},
		{"bitrate", rt.CreateEncoderConfigurationInput{Video: &types.Video{Bitrate: aws.Int32(8_500_001)}}, []string{"video.bitrate", "8500000"}},
		{"height", rt.CreateEncoderConfigurationInput{Video: &types.Video{Height: aws.Int32(0)}}, []string{"video.height"}},
		{"name", rt.CreateEncoderConfigurationInput{Name: aws.String("bad name!")}, []string{"name", "[a-zA-Z0-9-_]*"}},
		{"two errors", rt.CreateEncoderConfigurationInput{Name: aws.String("x y"), Video: &types.Video{Width: aws.Int32(3)}}, []string{"2 validation errors"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateEncoderConfiguration(e.ctx, &tc.in)
			wantAPIError(t, err, "ValidationException", tc.fields...)
		})
	}
	// Refused requests created nothing.
	list, err := c.ListEncoderConfigurations(e.ctx, &rt.ListEncoderConfigurationsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.EncoderConfigurations) != 2 || list.NextToken != nil {
		t.Fatalf("list = %d items, next %v; want 2 and no token", len(list.EncoderConfigurations), list.NextToken)
	}

	_, err = c.GetEncoderConfiguration(e.ctx, &rt.GetEncoderConfigurationInput{Arn: aws.String("arn:aws:ivs:us-east-1:123456789012:encoder-configuration/AAAAAAAAAAAA")})
	wantAPIError(t, err, "ResourceNotFoundException", "AAAAAAAAAAAA")
	_, err = c.GetEncoderConfiguration(e.ctx, &rt.GetEncoderConfigurationInput{Arn: aws.String("not-an-arn")})
	wantAPIError(t, err, "ValidationException", "arn")
	// Another account's resource does not exist here.
	_, err = c.GetEncoderConfiguration(e.ctx, &rt.GetEncoderConfigurationInput{Arn: aws.String("arn:aws:ivs:us-east-1:999999999999:encoder-configuration/" + arnID(*hd.EncoderConfiguration.Arn))})
	wantAPIError(t, err, "ResourceNotFoundException")

	if _, err := c.DeleteEncoderConfiguration(e.ctx, &rt.DeleteEncoderConfigurationInput{Arn: def.EncoderConfiguration.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteEncoderConfiguration(e.ctx, &rt.DeleteEncoderConfigurationInput{Arn: def.EncoderConfiguration.Arn})
	wantAPIError(t, err, "ResourceNotFoundException")
}

func arnID(arn string) string { return arn[len(arn)-12:] }

func TestPagination(t *testing.T) {
	e := newEnv(t)
	const n = 7
	want := map[string]bool{}
	for i := range n {
		out, err := e.client.CreateStorageConfiguration(e.ctx, &rt.CreateStorageConfigurationInput{
			Name: aws.String(fmt.Sprintf("s%d", i)), S3: &types.S3StorageConfiguration{BucketName: aws.String("bucket-1")}})
		if err != nil {
			t.Fatal(err)
		}
		want[*out.StorageConfiguration.Arn] = true
	}
	// The SDK's own paginator follows nextToken to the end.
	p := rt.NewListStorageConfigurationsPaginator(e.client, &rt.ListStorageConfigurationsInput{MaxResults: aws.Int32(3)})
	seen := map[string]bool{}
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.StorageConfigurations) > 3 {
			t.Fatalf("page of %d, maxResults 3", len(out.StorageConfigurations))
		}
		for _, s := range out.StorageConfigurations {
			if seen[*s.Arn] {
				t.Fatalf("%s listed twice", *s.Arn)
			}
			seen[*s.Arn] = true
			if *s.S3.BucketName != "bucket-1" {
				t.Errorf("bucket %s", *s.S3.BucketName)
			}
		}
	}
	if pages != 3 || len(seen) != n {
		t.Fatalf("%d pages, %d items; want 3 pages of 7 items", pages, len(seen))
	}
	for _, bad := range []struct {
		in     rt.ListStorageConfigurationsInput
		fields string
	}{
		{rt.ListStorageConfigurationsInput{MaxResults: aws.Int32(101)}, "maxResults"},
		{rt.ListStorageConfigurationsInput{NextToken: aws.String("!!!")}, "nextToken"},
	} {
		_, err := e.client.ListStorageConfigurations(e.ctx, &bad.in)
		wantAPIError(t, err, "ValidationException", bad.fields)
	}
}

func TestStorageConfigurations(t *testing.T) {
	e := newEnv(t)
	c := e.client
	for _, bucket := range []string{"ab", "UPPER", "has_underscore", string(make([]byte, 64))} {
		_, err := c.CreateStorageConfiguration(e.ctx, &rt.CreateStorageConfigurationInput{S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)}})
		wantAPIError(t, err, "ValidationException", "s3.bucketName")
	}
	sc, err := c.CreateStorageConfiguration(e.ctx, &rt.CreateStorageConfigurationInput{Name: aws.String("rec"), S3: &types.S3StorageConfiguration{BucketName: aws.String("my.bucket-1")}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetStorageConfiguration(e.ctx, &rt.GetStorageConfigurationInput{Arn: sc.StorageConfiguration.Arn})
	if err != nil || *got.StorageConfiguration.S3.BucketName != "my.bucket-1" || *got.StorageConfiguration.Name != "rec" {
		t.Fatalf("get: %+v %v", got, err)
	}
	// A stage recording into it holds it.
	st, err := c.CreateStage(e.ctx, &rt.CreateStageInput{AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: sc.StorageConfiguration.Arn}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteStorageConfiguration(e.ctx, &rt.DeleteStorageConfigurationInput{Arn: sc.StorageConfiguration.Arn})
	wantAPIError(t, err, "ConflictException", *st.Stage.Arn)
	if _, err := c.UpdateStage(e.ctx, &rt.UpdateStageInput{Arn: st.Stage.Arn, AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: aws.String("")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteStorageConfiguration(e.ctx, &rt.DeleteStorageConfigurationInput{Arn: sc.StorageConfiguration.Arn}); err != nil {
		t.Fatal(err)
	}
}

func TestIngestConfigurations(t *testing.T) {
	e := newEnv(t)
	c := e.client
	st, err := c.CreateStage(e.ctx, &rt.CreateStageInput{Name: aws.String("ingest")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateIngestConfiguration(e.ctx, &rt.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmp})
	wantAPIError(t, err, "ValidationException", "insecureIngest")
	_, err = c.CreateIngestConfiguration(e.ctx, &rt.CreateIngestConfigurationInput{IngestProtocol: "SRT"})
	wantAPIError(t, err, "ValidationException", "ingestProtocol")
	_, err = c.CreateIngestConfiguration(e.ctx, &rt.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmps, StageArn: aws.String("arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA")})
	wantAPIError(t, err, "ResourceNotFoundException")

	in, err := c.CreateIngestConfiguration(e.ctx, &rt.CreateIngestConfigurationInput{
		Name: aws.String("obs"), IngestProtocol: types.IngestProtocolRtmps, StageArn: st.Stage.Arn,
		UserId: aws.String("studio"), Attributes: map[string]string{"featured": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	ic := in.IngestConfiguration
	key := regexp.MustCompile(`^rt_123456789012_us-east-1_` + arnID(*ic.Arn) + `_[a-zA-Z0-9]{32}$`)
	if !key.MatchString(*ic.StreamKey) || ic.State != types.IngestConfigurationStateInactive || len(*ic.ParticipantId) != 12 || *ic.StageArn != *st.Stage.Arn {
		t.Fatalf("created %+v", ic)
	}
	plain, err := c.CreateIngestConfiguration(e.ctx, &rt.CreateIngestConfigurationInput{IngestProtocol: types.IngestProtocolRtmp, InsecureIngest: true})
	if err != nil {
		t.Fatal(err)
	}
	if *plain.IngestConfiguration.StageArn != "" {
		t.Fatalf("unattached plain RTMP: %+v", plain.IngestConfiguration)
	}

	list, err := c.ListIngestConfigurations(e.ctx, &rt.ListIngestConfigurationsInput{FilterByStageArn: st.Stage.Arn})
	if err != nil || len(list.IngestConfigurations) != 1 || *list.IngestConfigurations[0].Arn != *ic.Arn {
		t.Fatalf("filter by stage: %+v %v", list, err)
	}
	_, err = c.ListIngestConfigurations(e.ctx, &rt.ListIngestConfigurationsInput{FilterByStageArn: st.Stage.Arn, FilterByState: types.IngestConfigurationStateActive})
	wantAPIError(t, err, "ValidationException", "only one")

	up, err := c.UpdateIngestConfiguration(e.ctx, &rt.UpdateIngestConfigurationInput{Arn: plain.IngestConfiguration.Arn, StageArn: st.Stage.Arn})
	if err != nil || *up.IngestConfiguration.StageArn != *st.Stage.Arn {
		t.Fatalf("update: %+v %v", up, err)
	}

	// An ACTIVE configuration (a publisher is live) refuses updates and a
	// delete without force.
	if _, err := e.store.IngestConfigurations.Update(e.ctx, arnID(*ic.Arn), func(c *ivs.IngestConfiguration) error { c.State = ingestActive; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateIngestConfiguration(e.ctx, &rt.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String("")})
	wantAPIError(t, err, "ConflictException", "ACTIVE")
	_, err = c.DeleteIngestConfiguration(e.ctx, &rt.DeleteIngestConfigurationInput{Arn: ic.Arn})
	wantAPIError(t, err, "ConflictException", "force")
	if _, err := c.DeleteIngestConfiguration(e.ctx, &rt.DeleteIngestConfigurationInput{Arn: ic.Arn, Force: true}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetIngestConfiguration(e.ctx, &rt.GetIngestConfigurationInput{Arn: ic.Arn})
	wantAPIError(t, err, "ResourceNotFoundException")
}
