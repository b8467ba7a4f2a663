package stagesignal

import (
	"encoding/json"
	"testing"
)

// The subjects are a wire contract with servers of other versions: they
// must not change, and each must read back.
func TestDisconnectSubject(t *testing.T) {
	if got := DisconnectSubject("abcdABCDefgh"); got != "stagehand.stage.abcdABCDefgh.disconnect" {
		t.Fatalf("DisconnectSubject = %q", got)
	}
	if got := DisconnectSubject(Everyone); got != "stagehand.stage.*.disconnect" {
		t.Fatalf("DisconnectSubject(Everyone) = %q", got)
	}
	for subject, want := range map[string]string{
		DisconnectSubject("abcdABCDefgh"):     "abcdABCDefgh",
		"stagehand.stage..disconnect":         "",
		"stagehand.stage.a.b.disconnect":      "",
		"stagehand.stage.abc.connect":         "",
		"stagehand.jobs.start.abc":            "",
		"other.stage.abcdABCDefgh.disconnect": "",
	} {
		got, ok := DisconnectStage(subject)
		if got != want || ok != (want != "") {
			t.Errorf("DisconnectStage(%q) = %q, %v; want %q", subject, got, ok, want)
		}
	}
}

func TestDisconnectJSON(t *testing.T) {
	b, err := json.Marshal(Disconnect{ParticipantID: "abCDEf12GHIj", Reason: "spam"})
	if want := `{"participantId":"abCDEf12GHIj","reason":"spam"}`; err != nil || string(b) != want {
		t.Fatalf("Disconnect JSON = %s, %v; want %s", b, err, want)
	}
}
