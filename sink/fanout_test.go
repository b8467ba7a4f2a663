package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// received is what a test writer saw: stream, key flag and first payload byte.
type received struct {
	stream int
	key    bool
	seq    byte
}

// recordingWriter records packets; hooks let tests make it slow or fail.
type recordingWriter struct {
	mu      sync.Mutex
	got     []received
	closed  bool
	onWrite func(n int) error // n counts writes, from 0
	writes  int
}

func (w *recordingWriter) Write(_ context.Context, p *astiav.Packet, stream int) error {
	w.mu.Lock()
	n := w.writes
	w.writes++
	hook := w.onWrite
	w.mu.Unlock()
	if hook != nil {
		if err := hook(n); err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, received{stream, p.Flags().Has(astiav.PacketFlagKey), p.Data()[0]})
	return nil
}

func (w *recordingWriter) Close(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

func (w *recordingWriter) packets() []received {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]received(nil), w.got...)
}

// reopeningWriter fails some writes and recovers after some reopen attempts.
type reopeningWriter struct {
	recordingWriter
	reopenFailures int
	reopens        int
}

func (w *reopeningWriter) Reopen(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reopens++
	if w.reopens <= w.reopenFailures {
		return errors.New("connection refused")
	}
	return nil
}

// feed writes n packets: video (key every 30th) each followed by one audio
// packet; the payload's first byte is the packet's sequence number.
func feed(t *testing.T, f *Fanout, n int) {
	t.Helper()
	p := astiav.AllocPacket()
	defer p.Free()
	for i := 0; i < n; i++ {
		stream, key := StreamVideo, i%60 == 0
		if i%2 == 1 {
			stream, key = StreamAudio, false
		}
		if err := p.FromData([]byte{byte(i), 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if key {
			p.SetFlags(p.Flags().Add(astiav.PacketFlagKey))
		}
		f.Write(p, stream)
		p.Unref()
	}
}

// resumesOnKeyframes checks that after every gap in the sequence numbers the
// first video packet delivered is a keyframe.
func resumesOnKeyframes(t *testing.T, got []received) {
	t.Helper()
	gap := false
	for i, r := range got {
		if i > 0 && r.seq != got[i-1].seq+1 {
			gap = true
		}
		if gap && r.stream == StreamVideo {
			if !r.key {
				t.Fatalf("after a gap, packet %d (seq %d) is a video delta frame: output would not decode", i, r.seq)
			}
			gap = false
		}
	}
}

func TestSlowDestinationDoesNotStallOthers(t *testing.T) {
	checkGoroutines := testkit.CheckGoroutines(t)
	release := make(chan struct{})
	slow := &recordingWriter{onWrite: func(int) error { <-release; return nil }}
	fast := &recordingWriter{}
	f, err := Start(context.Background(), Config{Name: "slow", Writer: slow, QueueSize: 8}, Config{Name: "fast", Writer: fast})
	if err != nil {
		t.Fatal(err)
	}
	// If Write waited for the blocked destination, feed would never return.
	feed(t, f, 200)
	close(release)
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(fast.packets()); got != 200 {
		t.Errorf("fast destination got %d packets, want all 200", got)
	}
	st := f.Status()
	if st[0].Dropped == 0 || st[0].Packets+st[0].Dropped != 200 {
		t.Errorf("slow destination: %+v, want drops and packets+dropped = 200", st[0])
	}
	if st[1].Dropped != 0 || st[1].Packets != 200 || st[1].Bytes != 800 {
		t.Errorf("fast destination: %+v, want 200 packets, 800 bytes, no drops", st[1])
	}
	resumesOnKeyframes(t, slow.packets())
	for _, s := range st {
		if s.State != StateStopped {
			t.Errorf("%s ended %s, want STOPPED", s.Name, s.State)
		}
	}
	if !slow.closed || !fast.closed {
		t.Error("writers not closed")
	}
	checkGoroutines()
}

func TestFailingDestinationReconnects(t *testing.T) {
	checkGoroutines := testkit.CheckGoroutines(t)
	flaky := &reopeningWriter{reopenFailures: 2}
	var sawReconnecting sync.Once
	reconnecting := make(chan struct{})
	var f *Fanout
	flaky.onWrite = func(n int) error {
		if n == 10 {
			return errors.New("broken pipe")
		}
		return nil
	}
	steady := &recordingWriter{}
	f, err := Start(context.Background(),
		// The test feeds far faster than real time: queues hold it all.
		Config{Name: "rtmp", Writer: flaky, Backoff: time.Millisecond, QueueSize: 1024},
		Config{Name: "hls", Writer: steady, QueueSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for f.Status()[0].State != StateReconnecting {
			time.Sleep(100 * time.Microsecond)
		}
		sawReconnecting.Do(func() { close(reconnecting) })
	}()
	feed(t, f, 300)
	select {
	case <-reconnecting:
	case <-time.After(2 * time.Second):
		t.Fatal("the failing destination never reported RECONNECTING")
	}
	// Close while it reconnects would stop it (TestCloseStopsReconnecting):
	// let it recover and write what is queued first.
	testkit.WaitFor(t, 5*time.Second, time.Millisecond, testkit.Until("the destination recovered, writing again",
		func() bool { return len(flaky.packets()) >= 200 }))
	if err := f.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v (the destination recovered)", err)
	}
	st := f.Status()
	if st[0].State != StateStopped || st[0].Failures != 3 || !strings.Contains(st[0].LastError, "connection refused") {
		t.Errorf("rtmp: %+v, want STOPPED after 1 failed write and 2 failed reopens", st[0])
	}
	got := flaky.packets()
	if len(got) < 200 {
		t.Errorf("rtmp delivered only %d packets after reconnecting", len(got))
	}
	resumesOnKeyframes(t, got)
	if n := len(steady.packets()); n != 300 {
		t.Errorf("the other destination got %d packets, want 300", n)
	}
	checkGoroutines()
}

func TestDestinationFailsWhenItCannotRecover(t *testing.T) {
	cases := map[string]Writer{
		"no reopen":       &recordingWriter{onWrite: func(n int) error { return errIf(n == 5) }},
		"reopen gives up": &reopeningWriter{recordingWriter: recordingWriter{onWrite: func(n int) error { return errIf(n == 5) }}, reopenFailures: 1 << 30},
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			checkGoroutines := testkit.CheckGoroutines(t)
			steady := &recordingWriter{}
			f, err := Start(context.Background(),
				Config{Name: "bad", Writer: w, Backoff: time.Millisecond, RetryFor: 20 * time.Millisecond},
				Config{Name: "good", Writer: steady, QueueSize: 1024})
			if err != nil {
				t.Fatal(err)
			}
			feed(t, f, 100)
			testkit.WaitFor(t, 10*time.Second, 5*time.Millisecond, func() error { // the retries run out
				if st := f.Status()[0].State; st != StateFailed {
					return fmt.Errorf("the bad destination is %s, not yet FAILED", st)
				}
				return nil
			})
			feed(t, f, 100)
			err = f.Close(context.Background())
			if err == nil || !strings.Contains(err.Error(), "destination bad") {
				t.Fatalf("Close: %v, want the bad destination's failure", err)
			}
			if st := f.Status(); st[0].State != StateFailed || st[1].State != StateStopped {
				t.Errorf("states %s/%s, want FAILED/STOPPED", st[0].State, st[1].State)
			}
			if n := len(steady.packets()); n != 200 {
				t.Errorf("good destination got %d packets, want 200", n)
			}
			checkGoroutines()
		})
	}
}

func TestCloseGivesUpOnStuckDestination(t *testing.T) {
	checkGoroutines := testkit.CheckGoroutines(t)
	// The stuck writer ignores ctx; Close's deadline must still end the
	// wait, and the packets still queued are discarded, not written.
	stuck := &recordingWriter{}
	unblock := make(chan struct{})
	stuck.onWrite = func(int) error { <-unblock; return nil }
	f, err := Start(context.Background(), Config{Name: "stuck", Writer: stuck, QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	feed(t, f, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Close(ctx) }()
	time.Sleep(50 * time.Millisecond)
	close(unblock) // the writer returns; its queued packets are discarded, not written
	select {
	case err := <-done: // returning at all is what is tested
		t.Logf("Close: %v", err)
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return after its context ended")
	}
	if st := f.Status()[0]; st.Packets > 2 || st.Packets+st.Dropped != 20 {
		t.Errorf("stuck destination %+v: want at most the in-flight packets written and the rest dropped", st)
	}
	checkGoroutines()
}

func errIf(b bool) error {
	if b {
		return errors.New("boom")
	}
	return nil
}

// TestCloseStopsReconnecting: a destination reconnecting when Close begins
// (an RTMP server down as the composition stops, or its worker drains)
// stops trying at once instead of holding Close for its retry time, while
// the others write everything queued.
func TestCloseStopsReconnecting(t *testing.T) {
	checkGoroutines := testkit.CheckGoroutines(t)
	down := &reopeningWriter{recordingWriter: recordingWriter{onWrite: func(n int) error { return errIf(n == 5) }},
		reopenFailures: 1 << 30}
	steady := &recordingWriter{}
	f, err := Start(context.Background(),
		Config{Name: "down", Writer: down, Backoff: 10 * time.Millisecond, RetryFor: time.Hour},
		Config{Name: "good", Writer: steady, QueueSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	feed(t, f, 100)
	testkit.WaitFor(t, 5*time.Second, time.Millisecond, testkit.Until("the destination reconnecting",
		func() bool { return f.Status()[0].State == StateReconnecting }))
	start := time.Now()
	if err := f.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s with a destination reconnecting for up to an hour", took)
	}
	if st := f.Status(); st[0].State != StateStopped || st[1].State != StateStopped {
		t.Errorf("states %s/%s, want STOPPED/STOPPED", st[0].State, st[1].State)
	}
	if n := len(steady.packets()); n != 100 {
		t.Errorf("good destination got %d packets, want 100", n)
	}
	checkGoroutines()
}
