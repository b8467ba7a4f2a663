package api

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
)

// Request round trips through the real SDK client (SigV4 signing and
// verification, HTTP on loopback, JetStream KV).

func BenchmarkGetStage(b *testing.B) {
	e := newEnv(b)
	st, err := e.client.CreateStage(e.ctx, &rt.CreateStageInput{})
	if err != nil {
		b.Fatal(err)
	}
	in := &rt.GetStageInput{Arn: st.Stage.Arn}
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.client.GetStage(e.ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateParticipantToken(b *testing.B) {
	e := newEnv(b)
	st, err := e.client.CreateStage(e.ctx, &rt.CreateStageInput{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.client.CreateParticipantToken(e.ctx, &rt.CreateParticipantTokenInput{StageArn: st.Stage.Arn}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStartComposition(b *testing.B) {
	e := newEnv(b)
	f := newCompositionFixture(b, e)
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.client.StartComposition(e.ctx, &rt.StartCompositionInput{StageArn: aws.String(f.stage),
			Destinations: []types.DestinationConfiguration{f.s3()}}); err != nil {
			b.Fatal(err)
		}
	}
}
