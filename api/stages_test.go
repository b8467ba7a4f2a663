package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/token"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

// keys verifies tokens against the server's own key.
type serverKeys struct{ s *Server }

func (k serverKeys) Key(kid string) (*ecdsa.PublicKey, bool) {
	if kid == k.s.signer.KeyID() {
		return k.s.signer.PublicKey(), true
	}
	return nil, false
}

func TestStages(t *testing.T) {
	e := newEnv(t)
	c := e.client
	out, err := c.CreateStage(e.ctx, &rt.CreateStageInput{
		Name: aws.String("show"),
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{
			{UserId: aws.String("alice"), Attributes: map[string]string{"featured": "true"}},
			{UserId: aws.String("viewer"), Duration: aws.Int32(60), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}},
		},
		Tags: map[string]string{"env": "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := out.Stage
	rec := st.AutoParticipantRecordingConfiguration
	if *st.Name != "show" || st.Tags["env"] != "test" || rec == nil || *rec.StorageConfigurationArn != "" ||
		len(rec.MediaTypes) != 1 || rec.MediaTypes[0] != types.ParticipantRecordingMediaTypeAudioVideo ||
		*rec.HlsConfiguration.TargetSegmentDurationSeconds != 6 || !rec.RecordParticipantReplicas ||
		rec.ThumbnailConfiguration.RecordingMode != types.ThumbnailRecordingModeDisabled || *rec.ThumbnailConfiguration.TargetIntervalSeconds != 60 {
		t.Errorf("stage defaults: %+v recording %+v", st, rec)
	}
	if *st.Endpoints.Whip != "http://127.0.0.1:8691/whip" || *st.Endpoints.Events != "ws://127.0.0.1:8691/events" {
		t.Errorf("endpoints %+v", st.Endpoints)
	}
	if len(out.ParticipantTokens) != 2 {
		t.Fatalf("%d tokens, want 2", len(out.ParticipantTokens))
	}
	alice, viewer := out.ParticipantTokens[0], out.ParticipantTokens[1]
	if *alice.Duration != 720 || len(alice.Capabilities) != 2 || *viewer.Duration != 60 || len(viewer.Capabilities) != 1 {
		t.Errorf("token defaults: alice %+v viewer %+v", alice, viewer)
	}
	claims, err := token.Verify(*alice.Token, serverKeys{e.srv}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if claims.ParticipantID != *alice.ParticipantId || claims.UserID != "alice" || claims.StageARN != *st.Arn ||
		claims.StageID != arnID(*st.Arn) || !claims.Publish || !claims.Subscribe || claims.Attributes["featured"] != "true" ||
		claims.WhipURL != *st.Endpoints.Whip {
		t.Errorf("claims %+v", claims)
	}
	if d := claims.ExpiresAt.Sub(*alice.ExpirationTime); d != 0 {
		t.Errorf("expirationTime %v, token exp %v", *alice.ExpirationTime, claims.ExpiresAt)
	}
	vc, err := token.Verify(*viewer.Token, serverKeys{e.srv}, time.Now())
	if err != nil || vc.Publish || !vc.Subscribe || vc.ExpiresAt.Sub(vc.IssuedAt) != time.Hour {
		t.Errorf("viewer claims %+v %v", vc, err)
	}

	upd, err := c.UpdateStage(e.ctx, &rt.UpdateStageInput{Arn: st.Arn, Name: aws.String("renamed")})
	if err != nil || *upd.Stage.Name != "renamed" {
		t.Fatalf("update: %+v %v", upd, err)
	}
	_, err = c.UpdateStage(e.ctx, &rt.UpdateStageInput{Arn: st.Arn, AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
		StorageConfigurationArn: aws.String("arn:aws:ivs:us-east-1:123456789012:storage-configuration/AAAAAAAAAAAA")}})
	wantAPIError(t, err, "ResourceNotFoundException", "storage-configuration")
	_, err = c.UpdateStage(e.ctx, &rt.UpdateStageInput{Arn: st.Arn, AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
		StorageConfigurationArn: aws.String("arn:aws:ivs:us-east-1:123456789012:storage-configuration/AAAAAAAAAAAA"), RecordingReconnectWindowSeconds: 301,
		HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(11)}}})
	wantAPIError(t, err, "ValidationException", "recordingReconnectWindowSeconds", "targetSegmentDurationSeconds")

	get, err := c.GetStage(e.ctx, &rt.GetStageInput{Arn: st.Arn})
	if err != nil || *get.Stage.Name != "renamed" {
		t.Fatalf("get: %+v %v", get, err)
	}
	list, err := c.ListStages(e.ctx, &rt.ListStagesInput{})
	if err != nil || len(list.Stages) != 1 || *list.Stages[0].Arn != *st.Arn || list.Stages[0].Tags["env"] != "test" {
		t.Fatalf("list: %+v %v", list, err)
	}

	tooMany := make([]types.ParticipantTokenConfiguration, 13)
	_, err = c.CreateStage(e.ctx, &rt.CreateStageInput{ParticipantTokenConfigurations: tooMany})
	wantAPIError(t, err, "ValidationException", "participantTokenConfigurations")

	if _, err := c.DeleteStage(e.ctx, &rt.DeleteStageInput{Arn: st.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetStage(e.ctx, &rt.GetStageInput{Arn: st.Arn})
	wantAPIError(t, err, "ResourceNotFoundException")
}

func TestParticipantTokens(t *testing.T) {
	e := newEnv(t)
	c := e.client
	st, err := c.CreateStage(e.ctx, &rt.CreateStageInput{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateParticipantToken(e.ctx, &rt.CreateParticipantTokenInput{StageArn: st.Stage.Arn, Duration: aws.Int32(20160), UserId: aws.String("bob")})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(*tok.ParticipantToken.ExpirationTime); d < 20159*time.Minute || d > 20160*time.Minute {
		t.Errorf("expires in %v, want 14 days", d)
	}
	big := map[string]string{"k": string(make([]byte, 1024))}
	for _, tc := range []struct {
		in     rt.CreateParticipantTokenInput
		fields []string
	}{
		{rt.CreateParticipantTokenInput{StageArn: st.Stage.Arn, Duration: aws.Int32(20161)}, []string{"duration"}},
		{rt.CreateParticipantTokenInput{StageArn: st.Stage.Arn, Capabilities: []types.ParticipantTokenCapability{"ADMIN"}}, []string{"capabilities"}},
		{rt.CreateParticipantTokenInput{StageArn: st.Stage.Arn, Attributes: big}, []string{"attributes", "1024"}},
		{rt.CreateParticipantTokenInput{StageArn: aws.String("arn:aws:ivs:us-east-1:123456789012:channel/AAAAAAAAAAAA")}, []string{"stageArn"}},
	} {
		_, err := c.CreateParticipantToken(e.ctx, &tc.in)
		wantAPIError(t, err, "ValidationException", tc.fields...)
	}
	_, err = c.CreateParticipantToken(e.ctx, &rt.CreateParticipantTokenInput{StageArn: aws.String("arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA")})
	wantAPIError(t, err, "ResourceNotFoundException")
}

func p384PEM(t *testing.T) (string, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), k
}

func TestPublicKeys(t *testing.T) {
	e := newEnv(t)
	c := e.client
	material, _ := p384PEM(t)
	k, err := c.ImportPublicKey(e.ctx, &rt.ImportPublicKeyInput{PublicKeyMaterial: aws.String(material), Name: aws.String("customer")})
	if err != nil {
		t.Fatal(err)
	}
	if *k.PublicKey.PublicKeyMaterial != material || len(*k.PublicKey.Fingerprint) != 47 || *k.PublicKey.Name != "customer" {
		t.Errorf("imported %+v", k.PublicKey)
	}
	_, err = c.ImportPublicKey(e.ctx, &rt.ImportPublicKeyInput{PublicKeyMaterial: aws.String(material)})
	wantAPIError(t, err, "ConflictException", *k.PublicKey.Arn)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	for _, bad := range []string{"not a key", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))} {
		_, err := c.ImportPublicKey(e.ctx, &rt.ImportPublicKeyInput{PublicKeyMaterial: aws.String(bad)})
		wantAPIError(t, err, "ValidationException", "publicKeyMaterial")
	}
	list, err := c.ListPublicKeys(e.ctx, &rt.ListPublicKeysInput{})
	if err != nil || len(list.PublicKeys) != 1 {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, err := c.DeletePublicKey(e.ctx, &rt.DeletePublicKeyInput{Arn: k.PublicKey.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPublicKey(e.ctx, &rt.GetPublicKeyInput{Arn: k.PublicKey.Arn})
	wantAPIError(t, err, "ResourceNotFoundException")
}

func TestTokenVerifier(t *testing.T) {
	e := newEnv(t)
	c := e.client
	st, err := c.CreateStage(e.ctx, &rt.CreateStageInput{})
	if err != nil {
		t.Fatal(err)
	}
	material, priv := p384PEM(t)
	k, err := c.ImportPublicKey(e.ctx, &rt.ImportPublicKeyInput{PublicKeyMaterial: aws.String(material)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokenstore.NewVerifier(e.ctx, e.store, e.srv.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	// A customer signs its own token with the imported key.
	customer, err := token.NewSigner(priv, *k.PublicKey.Arn)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	self, err := customer.Sign(token.Claims{ParticipantID: "self_signed-1", StageARN: *st.Stage.Arn, StageID: arnID(*st.Stage.Arn),
		Publish: true, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if cl, err := v.Verify(e.ctx, self); err != nil || cl.ParticipantID != "self_signed-1" || !cl.Publish || cl.Subscribe {
		t.Fatalf("self-signed: %+v %v", cl, err)
	}
	issued, err := c.CreateParticipantToken(e.ctx, &rt.CreateParticipantTokenInput{StageArn: st.Stage.Arn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(e.ctx, *issued.ParticipantToken.Token); err != nil {
		t.Fatalf("server-issued token refused: %v", err)
	}
	// Disconnecting revokes the participant for good.
	if _, err := c.DisconnectParticipant(e.ctx, &rt.DisconnectParticipantInput{StageArn: st.Stage.Arn, ParticipantId: issued.ParticipantToken.ParticipantId}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(e.ctx, *issued.ParticipantToken.Token); !errors.Is(err, tokenstore.ErrRevoked) {
		t.Fatalf("revoked token: %v", err)
	}
	// Deleting the public key invalidates tokens it signed.
	if _, err := c.DeletePublicKey(e.ctx, &rt.DeletePublicKeyInput{Arn: k.PublicKey.Arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(e.ctx, self); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("token of a deleted key: %v", err)
	}
}
