package stage_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
)

// TestSingleMediaPort: with UDPAddr every peer's media goes through the
// one port: the answers offer only it, and media flows through it.
func TestSingleMediaPort(t *testing.T) {
	port := freeUDPPort(t)
	env := stagetest.Start(t, stagetest.Options{Stage: stage.Config{UDPAddr: fmt.Sprintf("127.0.0.1:%d", port)}})
	st := env.CreateStage(t, "one-port")
	_, alice := publish(t, env, st, "alice")
	_, r := subscribe(t, env, st, *alice.ParticipantId)
	testkit.WaitFor(t, 15*time.Second, 20*time.Millisecond, testkit.Until("video through the one port",
		func() bool { return r.count("video") >= 30 }))
	checkCandidates(t, env, st, "127.0.0.1", port)
}

// TestPublicAddress: behind a NAT or a NodePort the candidates name the
// public address and port.
func TestPublicAddress(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{Stage: stage.Config{
		UDPAddr: fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t)), PublicAddr: "192.0.2.10:30478"}})
	checkCandidates(t, env, env.CreateStage(t, "nat"), "192.0.2.10", 30478)
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	probe, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	return probe.LocalAddr().(*net.UDPAddr).Port
}

// checkCandidates publishes once more and checks that every candidate of
// the answer is ip:port over UDP.
func checkCandidates(t *testing.T, env *stagetest.Env, st types.Stage, ip string, port int) {
	t.Helper()
	bob := env.Token(t, *st.Arn, "bob", nil)
	status, answer := post(t, *st.Endpoints.Whip, *bob.Token, "application/sdp", stagetest.OfferSDP(t))
	if status != 201 {
		t.Fatalf("WHIP: %d %s", status, answer)
	}
	var candidates []string
	for line := range strings.SplitSeq(answer, "\n") {
		if strings.HasPrefix(line, "a=candidate:") {
			candidates = append(candidates, strings.TrimSpace(line))
		}
	}
	if len(candidates) == 0 {
		t.Fatal("the answer has no candidate")
	}
	for _, c := range candidates {
		if f := strings.Fields(c); len(f) < 6 || f[2] != "udp" || f[4] != ip || f[5] != fmt.Sprint(port) {
			t.Errorf("candidate %q is not %s:%d over UDP", c, ip, port)
		}
	}
}

func TestMediaAddressRefused(t *testing.T) {
	for _, cfg := range []stage.Config{
		{UDPAddr: "0.0.0.0:7000"}, {UDPAddr: ":7000"}, {UDPAddr: "not an address"},
		{PublicAddr: "example.com"}, {PublicAddr: "192.0.2.1:99999"}, {PublicAddr: "192.0.2.1:x"},
	} {
		if _, err := stage.New(cfg, nil, nil, nil); err == nil {
			t.Errorf("%+v was taken", cfg)
		}
	}
}
