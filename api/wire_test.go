package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	rt "github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/nats-io/nats.go"

	"github.com/stagehand-rt/stagehand/internal/promtest"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stagesignal"
)

func TestTags(t *testing.T) {
	e := newEnv(t)
	c := e.client
	st, err := c.CreateStage(e.ctx, &rt.CreateStageInput{Tags: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	arn := st.Stage.Arn
	if _, err := c.TagResource(e.ctx, &rt.TagResourceInput{ResourceArn: arn, Tags: map[string]string{"b": "2", "c": "3"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(e.ctx, &rt.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"a", "c"}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.ListTagsForResource(e.ctx, &rt.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tags) != 1 || got.Tags["b"] != "2" {
		t.Fatalf("tags %v, want {b:2}", got.Tags)
	}
	many := map[string]string{}
	for i := range 50 {
		many[string(rune('A'+i%26))+string(rune('a'+i/26))] = "x"
	}
	_, err = c.TagResource(e.ctx, &rt.TagResourceInput{ResourceArn: arn, Tags: many})
	wantAPIError(t, err, "ValidationException", "51 tags")
	_, err = c.ListTagsForResource(e.ctx, &rt.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA")})
	wantAPIError(t, err, "ResourceNotFoundException")
	_, err = c.ListTagsForResource(e.ctx, &rt.ListTagsForResourceInput{ResourceArn: aws.String("nonsense")})
	wantAPIError(t, err, "ValidationException", "resourceArn")
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	_, err := newClient(e.url, testKeyID, "wrong").ListStages(e.ctx, &rt.ListStagesInput{})
	wantAPIError(t, err, "InvalidSignatureException")
	_, err = newClient(e.url, "AKIAUNKNOWN", testSecret).ListStages(e.ctx, &rt.ListStagesInput{})
	wantAPIError(t, err, "UnrecognizedClientException")

	resp, body := post(t, e.url+"/CreateStage", `{"name":"sneaky"}`)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned: %d %s %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
	}
	list, err := e.client.ListStages(e.ctx, &rt.ListStagesInput{})
	if err != nil || len(list.Stages) != 0 {
		t.Fatalf("an unsigned request changed something: %+v %v", list, err)
	}
	// Each refusal is counted under its operation and code.
	checkRequests(t, e.srv, []requestCount{
		{"ListStages", "InvalidSignatureException", 1},
		{"ListStages", "UnrecognizedClientException", 1},
		{"CreateStage", "MissingAuthenticationTokenException", 1},
		{"ListStages", "OK", 1},
		{"CreateStage", "OK", 0},
	})
	if got := promtest.Value(t, e.srv.Collectors(), "stagehand_api_request_seconds", "operation", "ListStages"); got != 3 {
		t.Errorf("stagehand_api_request_seconds{operation=ListStages} has %v observations, want 3", got)
	}
}

// requestCount is the value stagehand_api_requests_total should have.
type requestCount struct {
	op, code string
	want     float64
}

func checkRequests(t *testing.T, srv *Server, want []requestCount) {
	t.Helper()
	for _, m := range want {
		if got := promtest.Value(t, srv.Collectors(), "stagehand_api_requests_total", "operation", m.op, "code", m.code); got != m.want {
			t.Errorf("stagehand_api_requests_total{operation=%s,code=%s} = %v, want %v", m.op, m.code, got, m.want)
		}
	}
}

func post(t *testing.T, u, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(u, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestErrorShape checks the wire form every client depends on.
func TestErrorShape(t *testing.T) {
	e := newEnv(t)
	e.srv.cfg.NoAuth = true
	cases := []struct {
		path, body string
		status     int
		code       string
	}{
		{"/GetStage", `{"arn":"arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"}`, 404, "ResourceNotFoundException"},
		{"/GetStage", `{"arn":`, 400, "ValidationException"},
		{"/GetStage", `{"arn":5}`, 400, "ValidationException"},
		{"/GetStage", `{}`, 400, "ValidationException"},
		{"/NoSuchOperation", `{}`, 404, "UnknownOperationException"},
		{"/tags/" + url.PathEscape("arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"), `{"tags":{"a":"b"}}`, 404, "ResourceNotFoundException"},
	}
	for _, tc := range cases {
		resp, body := post(t, e.url+tc.path, tc.body)
		var got map[string]string
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: body %q is not JSON", tc.path, body)
		}
		if resp.StatusCode != tc.status || resp.Header.Get("x-amzn-ErrorType") != tc.code || got["message"] == "" || got["message"] != got["exceptionMessage"] {
			t.Errorf("%s %s: %d %s %s", tc.path, tc.body, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
		}
	}
	// Paths that are no operation share one series: a scanner cannot
	// mint a series per path.
	post(t, e.url+"/AnotherMadeUpPath", `{}`)
	checkRequests(t, e.srv, []requestCount{
		{"GetStage", "ValidationException", 3},
		{"GetStage", "ResourceNotFoundException", 1},
		{"unknown", "UnknownOperationException", 2},
		{"NoSuchOperation", "UnknownOperationException", 0},
		{"TagResource", "ResourceNotFoundException", 1},
	})
	// ServiceQuotaExceededException is modeled as 402: the SDK types it.
	if quotaExceeded("x").Status != http.StatusPaymentRequired {
		t.Error("quota error is not 402")
	}
}

func TestParticipantsAndSessions(t *testing.T) {
	e := newEnv(t)
	c := e.client
	st, err := c.CreateStage(e.ctx, &rt.CreateStageInput{})
	if err != nil {
		t.Fatal(err)
	}
	stageID := arnID(*st.Stage.Arn)
	// The stage server (a later issue) writes these; seed them as it would.
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	sess := ivs.StageSession{SessionID: "st-a1b2c3d4e5f6g", StartTime: start}
	if err := e.store.Sessions.Put(e.ctx, stageID+"."+sess.SessionID, sess); err != nil {
		t.Fatal(err)
	}
	for i, p := range []ivs.Participant{
		{ParticipantID: "alice1234567", UserID: "alice", State: "CONNECTED", Published: true, RecordingState: "DISABLED", Protocol: "WHIP", Attributes: map[string]string{}},
		{ParticipantID: "bob123456789", UserID: "bob", State: "DISCONNECTED", RecordingState: "DISABLED", Protocol: "WHIP", Attributes: map[string]string{}},
	} {
		join := start.Add(time.Duration(i) * time.Second)
		p.FirstJoinTime = &join
		if err := e.store.Participants.Put(e.ctx, stageID+"."+sess.SessionID+"."+p.ParticipantID, p); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"JOINED", "PUBLISH_STARTED"} {
		ev := ivs.Event{Name: name, ParticipantID: "alice1234567", EventTime: start.Add(time.Duration(i) * time.Second)}
		if err := e.store.Events.Put(e.ctx, stageID+"."+sess.SessionID+".alice1234567."+ev.EventTime.Format("20060102150405.000000000"), ev); err != nil {
			t.Fatal(err)
		}
	}

	gs, err := c.GetStageSession(e.ctx, &rt.GetStageSessionInput{StageArn: st.Stage.Arn, SessionId: aws.String(sess.SessionID)})
	if err != nil || !gs.StageSession.StartTime.Equal(start) || gs.StageSession.EndTime != nil {
		t.Fatalf("session %+v %v", gs, err)
	}
	ls, err := c.ListStageSessions(e.ctx, &rt.ListStageSessionsInput{StageArn: st.Stage.Arn})
	if err != nil || len(ls.StageSessions) != 1 {
		t.Fatalf("sessions %+v %v", ls, err)
	}
	_, err = c.GetStageSession(e.ctx, &rt.GetStageSessionInput{StageArn: st.Stage.Arn, SessionId: aws.String("st-0000000000000")})
	wantAPIError(t, err, "ResourceNotFoundException")
	_, err = c.GetStageSession(e.ctx, &rt.GetStageSessionInput{StageArn: st.Stage.Arn, SessionId: aws.String("st-short")})
	wantAPIError(t, err, "ValidationException", "sessionId")

	gp, err := c.GetParticipant(e.ctx, &rt.GetParticipantInput{StageArn: st.Stage.Arn, SessionId: aws.String(sess.SessionID), ParticipantId: aws.String("alice1234567")})
	if err != nil || *gp.Participant.UserId != "alice" || gp.Participant.State != types.ParticipantStateConnected || !gp.Participant.Published || gp.Participant.Protocol != types.ParticipantProtocolWhip {
		t.Fatalf("participant %+v %v", gp, err)
	}
	for _, tc := range []struct {
		in   rt.ListParticipantsInput
		want int
	}{
		{rt.ListParticipantsInput{}, 2},
		{rt.ListParticipantsInput{FilterByUserId: aws.String("bob")}, 1},
		{rt.ListParticipantsInput{FilterByPublished: true}, 1},
		{rt.ListParticipantsInput{FilterByState: types.ParticipantStateDisconnected}, 1},
		{rt.ListParticipantsInput{FilterByRecordingState: types.ParticipantRecordingFilterByRecordingStateActive}, 0},
	} {
		tc.in.StageArn, tc.in.SessionId = st.Stage.Arn, aws.String(sess.SessionID)
		lp, err := c.ListParticipants(e.ctx, &tc.in)
		if err != nil || len(lp.Participants) != tc.want {
			t.Errorf("%+v: %+v %v, want %d", tc.in, lp, err, tc.want)
		}
	}
	_, err = c.ListParticipants(e.ctx, &rt.ListParticipantsInput{StageArn: st.Stage.Arn, SessionId: aws.String(sess.SessionID), FilterByUserId: aws.String("bob"), FilterByPublished: true})
	wantAPIError(t, err, "ValidationException", "only one")

	ev, err := c.ListParticipantEvents(e.ctx, &rt.ListParticipantEventsInput{StageArn: st.Stage.Arn, SessionId: aws.String(sess.SessionID), ParticipantId: aws.String("alice1234567")})
	if err != nil || len(ev.Events) != 2 || ev.Events[0].Name != types.EventNameJoined || ev.Events[1].Name != types.EventNamePublishStarted {
		t.Fatalf("events %+v %v", ev, err)
	}

	// DisconnectParticipant revokes and tells the stage server.
	sub, err := e.nc.SubscribeSync(stagesignal.DisconnectSubject(stageID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisconnectParticipant(e.ctx, &rt.DisconnectParticipantInput{StageArn: st.Stage.Arn, ParticipantId: aws.String("alice1234567"), Reason: aws.String("rude")}); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var d stagesignal.Disconnect
	if err := json.Unmarshal(msg.Data, &d); err != nil || d.ParticipantID != "alice1234567" || d.Reason != "rude" {
		t.Fatalf("disconnect message %s", msg.Data)
	}
	_, err = c.DisconnectParticipant(e.ctx, &rt.DisconnectParticipantInput{StageArn: aws.String("arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"), ParticipantId: aws.String("x")})
	wantAPIError(t, err, "ResourceNotFoundException")
	_ = nats.ErrTimeout
}
