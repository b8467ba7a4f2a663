package sigv4

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/smithy-go"
)

// TestGoSDKClient calls a real net/http server with the AWS SDK for Go v2's
// IVS Real-Time client, as a user of the API would, and checks that each
// call verifies, and that a wrong secret gets InvalidSignatureException.
func TestGoSDKClient(t *testing.T) {
	srv := newTestServer(t, testVerifier(time.Now()))
	client := func(akid, secret, token string) *ivsrealtime.Client {
		return ivsrealtime.New(ivsrealtime.Options{
			Region:       testRegion,
			BaseEndpoint: aws.String(srv.URL),
			Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, token),
			Retryer:      aws.NopRetryer{},
		})
	}
	ctx := context.Background()
	arn := aws.String(testARN)
	calls := map[string]func(*ivsrealtime.Client) error{
		"CreateStage": func(c *ivsrealtime.Client) error {
			_, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("stage-1")})
			return err
		},
		"TagResource": func(c *ivsrealtime.Client) error {
			_, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: arn, Tags: map[string]string{"team": "video"}})
			return err
		},
		"UntagResource": func(c *ivsrealtime.Client) error {
			_, err := c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"a", "b"}})
			return err
		},
		"ListTagsForResource": func(c *ivsrealtime.Client) error {
			_, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: arn})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct{ akid, secret, token string }{{testAKID, testSecret, ""}, {tempAKID, tempSecret, tempToken}} {
				if err := call(client(c.akid, c.secret, c.token)); err != nil {
					t.Fatalf("%s: %v (server: %+v)", c.akid, err, srv.lastSeen())
				}
				last := srv.lastSeen()
				t.Logf("%s %s SignedHeaders=%s", c.akid, last.RequestURI, signedHeadersOf(last.Authorization))
			}
			var apiErr smithy.APIError
			err := call(client(testAKID, wrongSecret, ""))
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != CodeInvalidSignature {
				t.Fatalf("wrong secret: got %v, want %s", err, CodeInvalidSignature)
			}
		})
	}
}
