package recording_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/recording"
)

// TestReconnectAcrossSessions: a participant alone on a stage who drops and
// comes back rejoins in a new stage session; within the window it still
// continues its recording, which the new session's participant shows. After
// the recording ended, publishing starts a new one.
func TestReconnectAcrossSessions(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	sc, err := env.API.CreateStorageConfiguration(env.Ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String("recordings")}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := env.API.CreateStage(env.Ctx, &ivsrealtime.CreateStageInput{Name: aws.String("s"),
		AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn: sc.StorageConfiguration.Arn, RecordingReconnectWindowSeconds: 60}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ivs.ParseARN(*out.Stage.Arn)
	d := recording.NewDispatcher(env.Store, env.Queue, nil)
	setState := func(key, state string) {
		if _, err := env.Store.Recordings.Update(env.Ctx, key, func(r *ivs.ParticipantRecording) error { r.State = state; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	first, err := d.PublishStarted(env.Ctx, a.ID, "st-one", "p1")
	if err != nil || first.Prefix == "" || first.SessionID != "st-one" {
		t.Fatalf("first publish: %+v, %v", first, err)
	}
	firstKey := a.ID + ".st-one.p1"
	setState(firstKey, ivs.RecordingActive)

	back, err := d.PublishStarted(env.Ctx, a.ID, "st-two", "p1")
	if err != nil || back.Prefix != first.Prefix || back.Publishes != 2 {
		t.Fatalf("back in a new session within the window: %+v, %v; want the first recording (%s) with 2 publishes", back, err, first.Prefix)
	}
	alias, err := env.Store.Recordings.Get(env.Ctx, a.ID+".st-two.p1")
	if err != nil || alias.Ref != firstKey {
		t.Errorf("the new session's record: %+v, %v; want a reference to %s", alias, err, firstKey)
	}

	setState(firstKey, ivs.RecordingStopped)
	again, err := d.PublishStarted(env.Ctx, a.ID, "st-three", "p1")
	if err != nil || again.Prefix == first.Prefix || again.SessionID != "st-three" || again.Publishes != 1 {
		t.Errorf("after the recording ended: %+v, %v; want a new recording", again, err)
	}
}
