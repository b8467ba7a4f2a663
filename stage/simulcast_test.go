package stage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/stage/client"
	"github.com/stagehand-rt/stagehand/synth"
	"github.com/stagehand-rt/stagehand/trackdecode"
)

// simulcastLayers are the test publisher's layers: 160x90, 320x180 and
// 640x360 VP8 at 15 fps, small enough for a 2-core machine.
var simulcastLayers = synth.SimulcastLayers(synth.Config{Width: 640, Height: 360, FPS: 15, VideoBitrate: 600_000,
	Label: "sim"})

func publishSimulcast(t *testing.T, env *stagetest.Env, st types.Stage) types.ParticipantToken {
	t.Helper()
	tok := env.Token(t, *st.Arn, "layered", nil, types.ParticipantTokenCapabilityPublish,
		types.ParticipantTokenCapabilitySubscribe)
	env.PublishSimulcastSynth(t, st, tok, simulcastLayers, client.PublishOptions{NoAudio: true})
	return tok
}

// frame is one decoded picture and when it was decoded.
type frame struct {
	at   time.Time
	w, h int
}

// layerView decodes a subscription's video and logs the packets it
// received, in order.
type layerView struct {
	sub *client.Subscription

	mu       sync.Mutex
	frames   []frame
	seqs     []uint16
	track    *webrtc.TrackRemote
	arrivals []arrival
}

type arrival struct {
	at     time.Time
	seq    uint16
	ts     uint32
	size   int
	marker bool
}

// seqReader logs the packets the decoder reads.
type seqReader struct {
	tr *webrtc.TrackRemote
	v  *layerView
}

func (r seqReader) ReadRTP() (*rtp.Packet, interceptor.Attributes, error) {
	p, a, err := r.tr.ReadRTP()
	if err == nil {
		r.v.mu.Lock()
		r.v.seqs = append(r.v.seqs, p.SequenceNumber)
		r.v.arrivals = append(r.v.arrivals, arrival{time.Now(), p.SequenceNumber, p.Timestamp, len(p.Payload), p.Marker})
		r.v.mu.Unlock()
	}
	return p, a, err
}

func (v *layerView) onTrack(t *testing.T) func(*webrtc.TrackRemote, *webrtc.RTPReceiver) {
	t.Helper()
	return func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		dec, err := trackdecode.NewVideo(tr.Codec().MimeType)
		if err != nil {
			t.Error(err)
			return
		}
		defer dec.Close()
		v.mu.Lock()
		v.track = tr
		v.mu.Unlock()
		dec.Run(seqReader{tr, v}, func(f *astiav.Frame, _ uint32) {
			v.mu.Lock()
			v.frames = append(v.frames, frame{time.Now(), f.Width(), f.Height()})
			v.mu.Unlock()
		}, func() {
			v.mu.Lock()
			s := v.sub
			v.mu.Unlock()
			if s != nil {
				_ = s.RequestKeyframe(tr)
			}
		})
	}
}

func subscribeLayer(t *testing.T, env *stagetest.Env, st types.Stage, publisherID, layer string) *layerView {
	t.Helper()
	tok := env.Token(t, *st.Arn, "viewer-"+layer, nil, types.ParticipantTokenCapabilitySubscribe)
	v := &layerView{}
	whep := client.LayerURL(client.WHEPURL(*st.Endpoints.Whip, publisherID), layer)
	s, err := client.Subscribe(env.Ctx, whep, *tok.Token, loopback, v.onTrack(t))
	if err != nil {
		t.Fatalf("subscribe to layer %q: %v", layer, err)
	}
	v.mu.Lock()
	v.sub = s
	v.mu.Unlock()
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return v
}

// waitSize waits for n frames of w x h decoded after since, and returns
// when the first came.
func (v *layerView) waitSize(t *testing.T, since time.Time, w, h, n int) time.Time {
	t.Helper()
	var first time.Time
	testkit.WaitFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		v.mu.Lock()
		defer v.mu.Unlock()
		got, last := 0, frame{}
		first = time.Time{}
		for _, f := range v.frames {
			if f.at.Before(since) {
				continue
			}
			last = f
			if f.w == w && f.h == h {
				if got == 0 {
					first = f.at
				}
				got++
			}
		}
		if got >= n {
			return nil
		}
		return fmt.Errorf("%d frames of %dx%d decoded (the last %dx%d), want %d", got, w, h, last.w, last.h, n)
	})
	return first
}

// timeline describes the frames decoded around t0, for a failure.
func (v *layerView) timeline(t0 time.Time) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var b strings.Builder
	for _, f := range v.frames {
		if d := f.at.Sub(t0); d > -500*time.Millisecond && d < 1500*time.Millisecond {
			fmt.Fprintf(&b, " %v:%dx%d", d.Round(time.Millisecond), f.w, f.h)
		}
	}
	b.WriteString("\npackets:")
	for _, a := range v.arrivals {
		if d := a.at.Sub(t0); d > -100*time.Millisecond && d < 1000*time.Millisecond {
			fmt.Fprintf(&b, " %v:%d/%d/%d/%v", d.Round(time.Millisecond), a.seq, a.ts, a.size, a.marker)
		}
	}
	return b.String()
}

// maxGap is the longest time between two decoded frames within [from, to].
func (v *layerView) maxGap(from, to time.Time) time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	var gap time.Duration
	var prev time.Time
	for _, f := range v.frames {
		if f.at.Before(from) || f.at.After(to) {
			continue
		}
		if !prev.IsZero() {
			gap = max(gap, f.at.Sub(prev))
		}
		prev = f.at
	}
	return gap
}

// holes are the sequence numbers missing between the first and the last
// packet received, and the jumps back (duplicates or late packets).
func (v *layerView) holes() (missing int, received int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.seqs) == 0 {
		return 0, 0
	}
	seen := map[uint16]bool{}
	first, span := v.seqs[0], uint16(0)
	for _, s := range v.seqs {
		seen[s] = true
		if d := s - first; d < 0x8000 && d > span {
			span = d
		}
	}
	for d := range span + 1 {
		if !seen[first+d] {
			missing++
		}
	}
	return missing, len(seen)
}

// TestSimulcastLayers: a simulcast publisher's three layers reach the
// stage as one track with layers; a subscriber asking for each layer (by
// name, by RID, by height, or none: the highest) decodes pictures of that
// layer's size; the events channel describes the layers; an unknown layer
// is refused naming the valid ones.
func TestSimulcastLayers(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "simulcast")
	w := watchEvents(t, env, st)
	tok := publishSimulcast(t, env, st)
	pid := *tok.ParticipantId
	for _, c := range []struct {
		layer string
		w, h  int
	}{{"low", 160, 90}, {"medium", 320, 180}, {"", 640, 360}, {"q", 160, 90}, {"100p", 320, 180}} {
		v := subscribeLayer(t, env, st, pid, c.layer)
		v.waitSize(t, time.Time{}, c.w, c.h, 10)
		v.mu.Lock()
		for _, f := range v.frames {
			if f.w != c.w || f.h != c.h {
				t.Errorf("layer %q: a %dx%d frame, want only %dx%d", c.layer, f.w, f.h, c.w, c.h)
				break
			}
		}
		v.mu.Unlock()
	}
	// The events channel's track info names the layers; their sizes are
	// known once keyframes passed (a later snapshot shows them).
	testkit.WaitFor(t, 10*time.Second, 20*time.Millisecond, testkit.Until("tracks-published of the layered track",
		func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, m := range w.msgs {
				if m.Type == stage.MsgTracksPublished && m.Participant.ParticipantID == pid {
					for _, tr := range m.Participant.Tracks {
						if tr.Kind == "video" && len(tr.Layers) == 3 && tr.Layers[0].RID == "q" &&
							tr.Layers[2].Name == "high" {
							return true
						}
					}
				}
			}
			return false
		}))
	later := watchEvents(t, env, st)
	testkit.WaitFor(t, 10*time.Second, 20*time.Millisecond, testkit.Until("the snapshot's layer sizes", func() bool {
		later.mu.Lock()
		defer later.mu.Unlock()
		for _, m := range later.msgs {
			for _, p := range m.Participants {
				for _, tr := range p.Tracks {
					if len(tr.Layers) == 3 {
						return tr.Layers[0].Width == 160 && tr.Layers[1].Height == 180 && tr.Layers[2].Width == 640
					}
				}
			}
		}
		return false
	}))
	viewer := env.Token(t, *st.Arn, "bad", nil, types.ParticipantTokenCapabilitySubscribe)
	whep := client.LayerURL(client.WHEPURL(*st.Endpoints.Whip, pid), "ultra")
	if status, body := post(t, whep, *viewer.Token, "application/sdp", stagetest.OfferSDP(t)); status != 400 ||
		!strings.Contains(body, `"ultra"`) || !strings.Contains(body, "low, medium, high") ||
		!strings.Contains(body, "q, h, f") {
		t.Errorf("unknown layer: %d %q, want 400 naming the layers", status, body)
	}
}

// TestSimulcastSwitch: a subscriber switched between layers while
// receiving gets the new layer's pictures from its next keyframe, with no
// gap in decoded frames over 200 ms and no hole in the sequence numbers
// it sees.
func TestSimulcastSwitch(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "switch")
	tok := publishSimulcast(t, env, st)
	v := subscribeLayer(t, env, st, *tok.ParticipantId, "low")
	v.waitSize(t, time.Time{}, 160, 90, 15)
	for _, c := range []struct {
		layer, rid string
		w, h       int
	}{{"high", "f", 640, 360}, {"medium", "h", 320, 180}, {"low", "q", 160, 90}} {
		asked := time.Now()
		got, err := v.sub.SetLayer(env.Ctx, c.layer)
		if err != nil {
			t.Fatal(err)
		}
		if got["video"] != c.rid {
			t.Errorf("switch to %s: %v, want video on %s", c.layer, got, c.rid)
		}
		first := v.waitSize(t, asked, c.w, c.h, 15)
		if gap := v.maxGap(asked.Add(-time.Second), first.Add(time.Second)); gap > 200*time.Millisecond {
			t.Errorf("switch to %s: a %v gap between decoded frames: %s", c.layer, gap, v.timeline(asked))
		}
		t.Logf("switch to %s: first %dx%d frame after %v, longest gap %v", c.layer, c.w, c.h,
			first.Sub(asked).Round(time.Millisecond), v.maxGap(asked.Add(-time.Second), first.Add(time.Second)))
	}
	missing, received := v.holes()
	if missing > 0 {
		t.Errorf("%d sequence numbers missing of %d received across three switches", missing, received)
	}
	if received < 50 {
		t.Errorf("%d packets received", received)
	}
}

// TestSimulcastNACKAfterSwitch: after a switch from the low to the high
// layer, a NACK for packets from before the switch is answered from the
// low layer's history (the packets another low subscriber got), not the
// high layer's.
func TestSimulcastNACKAfterSwitch(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "nack-switch")
	tok := publishSimulcast(t, env, st)
	pid := *tok.ParticipantId
	early, _ := subscribeLayerLog(t, env, st, pid, "low")
	early.wait(t, 30)
	late, sub := subscribeLayerLog(t, env, st, pid, "low")
	late.wait(t, 10)
	if _, err := sub.SetLayer(env.Ctx, "high"); err != nil {
		t.Fatal(err)
	}
	// Switched once a packet of a 640x360 keyframe came.
	testkit.WaitFor(t, 10*time.Second, 20*time.Millisecond, testkit.Until("the high layer's keyframe", func() bool {
		late.mu.Lock()
		defer late.mu.Unlock()
		for _, p := range late.payloads {
			if w, _, ok := stage.VP8KeyframeSize(p); ok && w == 640 {
				return true
			}
		}
		return false
	}))
	late.mu.Lock()
	seqs := []uint16{late.first - 1, late.first - 3}
	late.mu.Unlock()
	checkResent(t, early, late, sub, seqs) // early received the low layer
}

func subscribeLayerLog(t *testing.T, env *stagetest.Env, st types.Stage, publisherID, layer string) (*seqLog,
	*client.Subscription) {
	t.Helper()
	stok := env.Token(t, *st.Arn, "viewer", nil, types.ParticipantTokenCapabilitySubscribe)
	l := &seqLog{payloads: map[uint16][]byte{}, times: map[uint16]int{}}
	sub, err := client.Subscribe(env.Ctx, client.LayerURL(client.WHEPURL(*st.Endpoints.Whip, publisherID), layer),
		*stok.Token, loopback, l.onTrack)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	return l, sub
}

// TestLayerRequests: a publisher without simulcast has one layer, which
// every layer name gives (its subscriber switches nothing); an unknown
// layer is refused 400 naming the valid ones; a PATCH that is not a layer
// choice is still trickle ICE's 405; another participant's session is
// not found.
func TestLayerRequests(t *testing.T) {
	env := stagetest.Start(t, stagetest.Options{})
	st := env.CreateStage(t, "layer-requests")
	_, tok := publish(t, env, st, "alice")
	pid := *tok.ParticipantId
	viewer := env.Token(t, *st.Arn, "viewer", nil, types.ParticipantTokenCapabilitySubscribe)
	r := &received{packets: map[string]int{}, senders: map[string]bool{}}
	sub, err := client.Subscribe(env.Ctx, client.LayerURL(client.WHEPURL(*st.Endpoints.Whip, pid), "low"),
		*viewer.Token, loopback, r.onTrack)
	if err != nil {
		t.Fatalf("a layer of a publisher without simulcast: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	testkit.WaitFor(t, 15*time.Second, 20*time.Millisecond, testkit.Until("video", func() bool {
		return r.count("video") >= 10
	}))
	if got, err := sub.SetLayer(env.Ctx, "high"); err != nil || len(got) != 0 {
		t.Errorf("switching a publisher without simulcast: %v, %v; want nothing switched", got, err)
	}
	_, err = sub.SetLayer(env.Ctx, "ultra")
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != 400 || !strings.Contains(se.Message, "low, medium, high") {
		t.Errorf("unknown layer: %v, want 400 naming the layers", err)
	}
	resource := sub.Resource()
	for _, c := range []struct {
		tok, ctype, body string
		status           int
		says             string
	}{
		{*viewer.Token, "application/trickle-ice-sdpfrag", "a=candidate:1 1 udp 1 127.0.0.1 9 typ host", 405, "trickle ICE"},
		{*viewer.Token, "application/json", `{"layer":`, 400, "not {"},
		{*viewer.Token, "application/json", `{}`, 400, "no layer"},
		{*tok.Token, "application/json", `{"layer":"low"}`, 404, "no such session"},
	} {
		req, _ := http.NewRequestWithContext(env.Ctx, http.MethodPatch, resource, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+c.tok)
		req.Header.Set("Content-Type", c.ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.says) {
			t.Errorf("PATCH %s %s: %d %q, want %d saying %q", c.ctype, c.body, resp.StatusCode, b, c.status, c.says)
		}
	}
}
