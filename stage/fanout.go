package stage

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
)

// Fan-out of one published track.
//
// Each subscriber has a track of its own (one binding), so a packet can be
// sent again to the one subscriber that lost it. Subscribers are split into
// shards: the relay goroutine writes the first shard itself (a composition
// worker or a handful of viewers cost no hand-off), and each further shard
// has a writer goroutine of its own, so one popular track's fan-out uses
// every core. A shard that falls behind drops packets for its own
// subscribers only (they ask for them again); it never holds up the relay.
//
// Packets are shared, not copied: the relay allocates each packet once and
// never changes it after write, and every writer and the history read the
// same one (pion's TrackLocalStaticRTP copies the header it rewrites).
const (
	// inlineSubscribers is how many subscribers the relay goroutine writes
	// itself before further subscribers go to writer shards.
	inlineSubscribers = 8
	// shardQueue is how many packets a writer shard may lag behind: about
	// 1.5 s of 1.5 Mbit/s video.
	shardQueue = 256
	// historySize is how many recent packets of a track a NACK can ask for
	// again: about 7 s of 1.5 Mbit/s video, one copy per track whatever the
	// number of subscribers. A power of two: the index is seq & (size-1).
	historySize = 1024
	// resendBurst is how many packets one subscriber may be sent again
	// at once (a NACK's answer), about 0.8 s of 1.5 Mbit/s video. Past
	// it, each packet forwarded to the subscriber earns one resend: as
	// libwebrtc caps retransmissions at the media's own rate, a receiver
	// that loses packets because the node or its link is overloaded
	// cannot make the node send many times its stream again (and lose
	// more).
	resendBurst = 128
	// shardPass is how many queued packets a writer shard writes in one
	// batch at most.
	shardPass = 4
)

type fanout struct {
	mu     sync.Mutex // membership changes and closing
	shards atomic.Pointer[[]*shard]
	closed bool
	done   chan struct{} // closed by close: the writer goroutines end

	goTracked  func(func()) bool
	maxWriters int            // writer shards at most: one per core
	dropped    *atomic.Uint64 // packets lost to a writer shard's full queue (the server's count)
	batch      batcher        // nil, or the media socket: it sends a pass's writes at once

	hmu     sync.RWMutex
	history [historySize]*rtp.Packet
}

// shard is a set of subscribers written by one goroutine.
type shard struct {
	subs atomic.Pointer[[]*subscription] // copy on write
	in   chan *rtp.Packet                // nil for the inline shard
}

// subscription is one subscriber's track of a published track.
type subscription struct {
	track  rtpWriter
	shard  *shard
	credit atomic.Int32 // resends it may have now, at most resendBurst
}

// batcher queues the writes between begin and end and sends them at
// end, in as few system calls as it can (writebatch.go).
type batcher interface {
	begin()
	end()
}

// rtpWriter is a subscriber's track: a *webrtc.TrackLocalStaticRTP.
type rtpWriter interface{ WriteRTP(*rtp.Packet) error }

// newFanout is a fan-out of the server's: its goroutines are the server's,
// and its drops count in the server's metrics.
func (s *Server) newFanout() *fanout {
	f := newFanout(s.goTracked)
	f.dropped = &s.fanoutDropped
	if s.media != nil {
		f.batch = s.media.conn
	}
	return f
}

// newFanout returns a fan-out whose writer goroutines are started with
// goTracked, so the server waits for them on Close; it reports false when
// the server is closing.
func newFanout(goTracked func(func()) bool) *fanout {
	f := &fanout{goTracked: goTracked, done: make(chan struct{}), maxWriters: runtime.GOMAXPROCS(0),
		dropped: new(atomic.Uint64)}
	inline := &shard{}
	inline.subs.Store(&[]*subscription{})
	f.shards.Store(&[]*shard{inline})
	return f
}

// add makes track a subscriber of the fan-out; it receives from the next
// packet on. It returns nil once the fan-out is closed (the publisher left).
func (f *fanout) add(track rtpWriter) *subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	sh := f.pickLocked()
	sub := &subscription{track: track, shard: sh}
	subs := append(append([]*subscription(nil), *sh.subs.Load()...), sub)
	sh.subs.Store(&subs)
	return sub
}

// pickLocked chooses the shard for a new subscriber: the inline shard
// while it has room, then the least-loaded writer shard, starting writer
// shards up to one per core.
func (f *fanout) pickLocked() *shard {
	shards := *f.shards.Load()
	if len(*shards[0].subs.Load()) < inlineSubscribers {
		return shards[0]
	}
	var best *shard
	for _, sh := range shards[1:] {
		if best == nil || len(*sh.subs.Load()) < len(*best.subs.Load()) {
			best = sh
		}
	}
	if best != nil && (len(*best.subs.Load()) == 0 || len(shards)-1 >= f.maxWriters) {
		return best
	}
	sh := &shard{in: make(chan *rtp.Packet, shardQueue)}
	sh.subs.Store(&[]*subscription{})
	if !f.goTracked(func() { sh.run(f.done, f.batch) }) {
		return shards[0] // the server is closing
	}
	grown := append(append([]*shard(nil), shards...), sh)
	f.shards.Store(&grown)
	return sh
}

// remove stops writing to sub. Its shard stays, for the next subscriber.
func (f *fanout) remove(sub *subscription) {
	if sub == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *sub.shard.subs.Load()
	subs := make([]*subscription, 0, len(old))
	for _, s := range old {
		if s != sub {
			subs = append(subs, s)
		}
	}
	sub.shard.subs.Store(&subs)
}

// write sends p to every subscriber and keeps it for NACKs. p must not
// change afterwards.
func (f *fanout) write(p *rtp.Packet) {
	f.hmu.Lock()
	f.history[p.SequenceNumber&(historySize-1)] = p
	f.hmu.Unlock()
	shards := *f.shards.Load()
	for _, sh := range shards[1:] {
		if len(*sh.subs.Load()) == 0 {
			continue
		}
		select {
		case sh.in <- p:
		default:
			f.dropped.Add(1)
		}
	}
	if f.batch != nil {
		f.batch.begin()
		shards[0].writeAll(p)
		f.batch.end()
		return
	}
	shards[0].writeAll(p)
}

// lookup returns the packet with sequence number seq if it is still kept.
func (f *fanout) lookup(seq uint16) *rtp.Packet {
	f.hmu.RLock()
	defer f.hmu.RUnlock()
	p := f.history[seq&(historySize-1)]
	if p == nil || p.SequenceNumber != seq {
		return nil
	}
	return p
}

// close ends the writer goroutines; later adds return nil, and later
// writes reach only the inline shard. It is called when the published
// track ends, and may be called again.
func (f *fanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}

// run writes the shard's packets as they come. With a batcher, the
// packets already queued are written in one pass (up to shardPass), so a
// shard that fell behind catches up in fewer, larger batches.
func (sh *shard) run(done <-chan struct{}, batch batcher) {
	for {
		select {
		case p := <-sh.in:
			if batch == nil {
				sh.writeAll(p)
				continue
			}
			batch.begin()
			sh.writeAll(p)
		drain:
			for range shardPass - 1 {
				select {
				case p := <-sh.in:
					sh.writeAll(p)
				default:
					break drain
				}
			}
			batch.end()
		case <-done:
			return
		}
	}
}

func (sh *shard) writeAll(p *rtp.Packet) {
	for _, sub := range *sh.subs.Load() {
		sub.forward(p)
	}
}

// forward writes p to this subscriber. A failed write is that receiver's
// loss, which it asks for again; a closed connection's subscription is
// removed when its RTCP reader ends.
func (sub *subscription) forward(p *rtp.Packet) {
	if sub.credit.Load() < resendBurst { // at the cap, no write: the usual case
		sub.credit.Add(1)
	}
	_ = sub.track.WriteRTP(p)
}

// send writes p again to this subscriber only, as a NACK asks, unless
// its resends are over its credit (resendBurst).
func (sub *subscription) send(p *rtp.Packet) {
	if sub.credit.Add(-1) < 0 {
		sub.credit.Add(1)
		return
	}
	_ = sub.track.WriteRTP(p)
}
