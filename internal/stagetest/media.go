package stagetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/token"
)

// OfferSDP is a real offer of one audio and one video section, as a
// browser would send to WHIP or WHEP.
func OfferSDP(t testing.TB) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{
			Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

// ImportedSigner imports a new public key through the API, as IVS
// customers do, and returns a signer of tokens naming it.
func (e *Env) ImportedSigner(t testing.TB) *token.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.API.ImportPublicKey(e.Ctx, &ivsrealtime.ImportPublicKeyInput{
		PublicKeyMaterial: aws.String(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.NewSigner(key, *out.PublicKey.Arn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
