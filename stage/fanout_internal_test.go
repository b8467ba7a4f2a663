package stage

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// seqWriter records the sequence numbers written to one subscriber.
type seqWriter struct {
	mu   sync.Mutex
	seqs []uint16
}

func (w *seqWriter) WriteRTP(p *rtp.Packet) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seqs = append(w.seqs, p.SequenceNumber)
	return nil
}

func (w *seqWriter) got() []uint16 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seqs)
}

// testFanout is a fan-out whose writer goroutines the test waits for.
func testFanout(t *testing.T, maxWriters int) *fanout {
	t.Helper()
	var wg sync.WaitGroup
	f := newFanout(func(fn func()) bool { wg.Go(fn); return true })
	f.maxWriters = maxWriters
	t.Cleanup(func() { f.close(); wg.Wait() })
	return f
}

func shardSizes(f *fanout) []int {
	var sizes []int
	for _, sh := range *f.shards.Load() {
		sizes = append(sizes, len(*sh.subs.Load()))
	}
	return sizes
}

func TestFanoutShards(t *testing.T) {
	for _, tc := range []struct {
		subscribers, maxWriters int
		want                    []int
	}{
		{1, 2, []int{1}},
		{8, 2, []int{8}},
		{9, 2, []int{8, 1}},
		{20, 2, []int{8, 6, 6}},
		{20, 1, []int{8, 12}},
		{40, 4, []int{8, 8, 8, 8, 8}},
	} {
		f := testFanout(t, tc.maxWriters)
		writers := make([]*seqWriter, tc.subscribers)
		for i := range writers {
			writers[i] = &seqWriter{}
			f.add(writers[i])
		}
		if got := shardSizes(f); !slices.Equal(got, tc.want) {
			t.Errorf("%d subscribers, %d writers: shards %v, want %v", tc.subscribers, tc.maxWriters, got, tc.want)
		}
		const packets = 100
		for seq := range uint16(packets) {
			f.write(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}})
		}
		for i, w := range writers {
			testkit.WaitFor(t, 5*time.Second, time.Millisecond, testkit.Until("every packet at each subscriber",
				func() bool { return len(w.got()) == packets }))
			for n, seq := range w.got() {
				if seq != uint16(n) {
					t.Fatalf("subscriber %d: packet %d has sequence number %d: out of order", i, n, seq)
				}
			}
		}
	}
}

func TestFanoutRemoveAndClose(t *testing.T) {
	f := testFanout(t, 2)
	var writers []*seqWriter
	var subs []*subscription
	for range 12 {
		w := &seqWriter{}
		writers = append(writers, w)
		subs = append(subs, f.add(w))
	}
	f.write(&rtp.Packet{Header: rtp.Header{SequenceNumber: 1}})
	for _, w := range writers { // writer shards deliver asynchronously
		testkit.WaitFor(t, 5*time.Second, time.Millisecond, testkit.Until("the first packet at each subscriber",
			func() bool { return len(w.got()) == 1 }))
	}
	f.remove(subs[0])  // inline
	f.remove(subs[10]) // the first writer shard's (8 and 10 are there, 9 and 11 in the second)
	f.write(&rtp.Packet{Header: rtp.Header{SequenceNumber: 2}})
	for i, w := range writers {
		want := []uint16{1, 2}
		if i == 0 || i == 10 {
			want = []uint16{1}
		}
		testkit.WaitFor(t, 5*time.Second, time.Millisecond, testkit.Until(fmt.Sprintf("the packets at subscriber %d (%v)", i, w.got()),
			func() bool { return len(w.got()) == len(want) }))
		if got := w.got(); !slices.Equal(got, want) {
			t.Errorf("subscriber %d got %v, want %v", i, got, want)
		}
	}
	if got := shardSizes(f); !slices.Equal(got, []int{7, 1, 2}) {
		t.Errorf("shards after two removals: %v, want [7 1 2]", got)
	}
	// The next subscriber fills the inline shard again.
	f.add(&seqWriter{})
	if got := shardSizes(f); !slices.Equal(got, []int{8, 1, 2}) {
		t.Errorf("shards after an add: %v, want [8 1 2]", got)
	}
	f.close()
	if sub := f.add(&seqWriter{}); sub != nil {
		t.Error("a closed fan-out took a subscriber")
	}
	f.write(&rtp.Packet{Header: rtp.Header{SequenceNumber: 3}}) // after close: no panic
}

func TestFanoutHistory(t *testing.T) {
	f := testFanout(t, 1)
	end := uint16(1000)
	for seq := uint16(65000); seq != end; seq++ { // wraps around
		f.write(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}, Payload: []byte{byte(seq)}})
	}
	for _, tc := range []struct {
		seq  uint16
		kept bool
	}{
		{999, true},
		{0, true},
		{65535, true},
		{end - historySize, true},
		{end - historySize - 1, false}, // overwritten by a newer packet in its slot
		{end, false},                   // not sent yet
		{65000, false},
	} {
		p := f.lookup(tc.seq)
		if (p != nil) != tc.kept {
			t.Errorf("lookup(%d) = %v, want kept %v", tc.seq, p, tc.kept)
		}
		if p != nil && (p.SequenceNumber != tc.seq || p.Payload[0] != byte(tc.seq)) {
			t.Errorf("lookup(%d) returned packet %d", tc.seq, p.SequenceNumber)
		}
	}
}

// blockedWriter is a subscriber whose writes hang until release closes.
type blockedWriter struct {
	seqWriter
	release chan struct{}
}

func (w *blockedWriter) WriteRTP(p *rtp.Packet) error {
	<-w.release
	return w.seqWriter.WriteRTP(p)
}

// TestFanoutLaggingShard: a writer shard that cannot keep up drops packets
// past its queue, counted, and holds up neither the relay nor the inline
// subscribers.
func TestFanoutLaggingShard(t *testing.T) {
	f := testFanout(t, 1)
	var inline []*seqWriter
	for range inlineSubscribers {
		w := &seqWriter{}
		inline = append(inline, w)
		f.add(w)
	}
	slow := &blockedWriter{release: make(chan struct{})}
	f.add(slow) // the first in the writer shard
	const packets = shardQueue + 50
	for seq := range uint16(packets) {
		f.write(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}}) // returns: the relay is not held up
	}
	for i, w := range inline {
		if n := len(w.got()); n != packets {
			t.Errorf("inline subscriber %d got %d packets, want %d", i, n, packets)
		}
	}
	// The writer holds one packet and its queue shardQueue: the rest dropped.
	if d := f.dropped.Load(); d < packets-shardQueue-1 || d > packets-shardQueue {
		t.Errorf("dropped %d, want %d or %d", d, packets-shardQueue-1, packets-shardQueue)
	}
	close(slow.release)
	testkit.WaitFor(t, 5*time.Second, time.Millisecond, testkit.Until("the slow subscriber's queue written",
		func() bool { return uint64(len(slow.got()))+f.dropped.Load() == packets }))
}

// TestResendCredit: a subscriber is sent again at most what it was
// forwarded, up to resendBurst at once; past it a NACK's packets are not
// sent again until more packets went to it.
func TestResendCredit(t *testing.T) {
	f := testFanout(t, 1)
	w := &seqWriter{}
	sub := f.add(w)
	p := &rtp.Packet{Header: rtp.Header{SequenceNumber: 1}}
	for range 10 {
		f.write(p)
	}
	for range 20 {
		sub.send(p)
	}
	if got := len(w.got()); got != 10+10 {
		t.Fatalf("after 10 packets and 20 resends asked: %d written, want 20", got)
	}
	for range 2 * resendBurst {
		f.write(p)
	}
	for range 2 * resendBurst {
		sub.send(p)
	}
	if got, want := len(w.got()), 20+2*resendBurst+resendBurst; got != want {
		t.Fatalf("past the burst: %d written, want %d", got, want)
	}
}
