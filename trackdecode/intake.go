package trackdecode

import (
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// maxPayload bounds the payload of a packet worth keeping: WebRTC keeps RTP
// under the path MTU, so anything bigger is garbage, and the bound caps the
// reorder buffer's memory at maxLate packets of this size.
const maxPayload = 16 << 10

// resyncAfter is how many packets in a row from another SSRC and payload
// type, or from far behind the sequence, make the intake accept that the
// stream restarted. Fewer are just garbage.
const resyncAfter = 32

// intakeConfig describes how a codec's packets are checked and reassembled.
type intakeConfig struct {
	// maxLate is the reorder window in packets (pion's samplebuilder maxLate):
	// it must exceed the packets of the largest frame, or that frame is
	// forced out of the buffer before its last packet arrives.
	maxLate         uint16
	maxDelay        time.Duration // the reorder window in media time
	clockRate       uint32
	newDepacketizer func() rtp.Depacketizer
	headHandler     func(depacketizer any) any // nil: none
	// valid reports whether the depacketizer would accept a payload: one it
	// rejects would make the samplebuilder drop its frame without counting it.
	valid func(payload []byte) bool
	// padding stands in for padding-only packets, with the marker bit set, so
	// they keep their sequence number (a hole would look like a loss) and
	// become an empty frame of their own (samplebuilder would otherwise glue
	// them to the next frame and drop both). Nil drops them instead.
	padding []byte
	// filler, when set, fills the hole of a packet given up on after
	// maxDelay, with the marker bit set: the frame it breaks ends with it and
	// is recognised by its suffix. With a filler the samplebuilder is never
	// made to force anything out (see intake); without one it gives up on
	// holes itself after maxDelay, which is only safe for codecs whose every
	// packet is a frame head (Opus).
	filler []byte
	// dropped is the counter the samplebuilder's own drops add to.
	dropped counter
}

type hole struct {
	seq uint16
	ts  uint32 // timestamp of the packet that revealed it
}

// seqSet is a set of sequence numbers.
type seqSet [1 << 16 / 64]uint64

func (s *seqSet) has(n uint16) bool { return s[n/64]&(1<<(n%64)) != 0 }
func (s *seqSet) add(n uint16)      { s[n/64] |= 1 << (n % 64) }
func (s *seqSet) del(n uint16)      { s[n/64] &^= 1 << (n % 64) }

// intake filters a track's packets, copies them into pooled packets and
// pushes them into the reorder buffer. It is not safe for concurrent use.
//
// It keeps pion's samplebuilder (v4.2) on the paths that work. When the
// samplebuilder forces packets out itself (its window full, or its time
// limit passed) and discards a run of packets without a frame head there,
// it also drops the packet after the run, which can be the head of a
// keyframe, and at the end of its buffer it steps past its own tail: it then
// believes it holds all 65536 slots and scans them all on every packet. So
// for video the intake fills holes itself instead of letting the time limit
// apply, and for every codec it never lets the buffer span more than its
// window: a packet that would is a jump, and the buffer starts over.
type intake struct {
	cfg   intakeConfig
	stats *counters
	sb    *samplebuilder.SampleBuilder

	locked   bool // ssrc and pt are the track's
	ssrc     uint32
	pt       uint8
	candSSRC uint32 // a stream that may be replacing the locked one
	candPT   uint8
	candRun  int

	started  bool
	highest  uint16 // highest sequence number pushed
	newestTS uint32 // its timestamp
	// The samplebuilder decides where its sequence starts at the first Pop.
	// No sample can be complete before a packet of a second timestamp
	// arrives, so Pop waits for one, and packets reordered before the first
	// are not taken for late.
	popping      bool
	lowest       uint16 // lowest sequence number pushed before popping
	firstTS      uint32
	released     bool
	lastReleased uint16 // sequence number of the last packet the buffer let go
	lateRun      int    // packets from far behind in a row

	held    seqSet // in the buffer
	fillers seqSet // in the buffer, standing in for a lost packet
	missing seqSet // above a pushed packet, not arrived yet
	holes   []hole // missing sequence numbers in the order they were found
	nheld   int
	free    []*rtp.Packet // released packets, for reuse
}

func newIntake(cfg intakeConfig, stats *counters) *intake {
	in := &intake{cfg: cfg, stats: stats}
	if cfg.filler != nil {
		in.holes = make([]hole, 0, cfg.maxLate)
	}
	in.reset()
	return in
}

// reset starts a new reorder buffer. The packets the old one holds are left
// to the garbage collector.
func (in *intake) reset() {
	opts := []samplebuilder.Option{samplebuilder.WithPacketReleaseHandler(in.release)}
	if in.cfg.filler == nil {
		opts = append(opts, samplebuilder.WithMaxTimeDelay(in.cfg.maxDelay))
	}
	if in.cfg.headHandler != nil {
		opts = append(opts, samplebuilder.WithPacketHeadHandler(in.cfg.headHandler))
	}
	in.sb = samplebuilder.New(in.cfg.maxLate, in.cfg.newDepacketizer(), in.cfg.clockRate, opts...)
	in.held, in.fillers, in.missing = seqSet{}, seqSet{}, seqSet{}
	in.holes = in.holes[:0]
	in.nheld = 0
	in.started, in.popping, in.released = false, false, false
	in.lateRun, in.candRun = 0, 0
}

// restart replaces the buffer because the stream restarted or jumped. What
// the old one holds is lost: flushing it would force it out.
func (in *intake) restart() {
	in.stats.inc(cResyncs)
	in.reset()
}

func (in *intake) release(p *rtp.Packet) {
	seq := p.SequenceNumber
	in.held.del(seq)
	in.fillers.del(seq)
	in.nheld--
	in.released, in.lastReleased = true, seq
	in.free = append(in.free, p)
}

// base is the oldest sequence number the buffer may still hold.
func (in *intake) base() uint16 {
	if in.released {
		return in.lastReleased + 1
	}
	return in.lowest
}

// behind reports a sequence number the buffer has moved past: outside the
// window, or at or before what it let go (the samplebuilder would move its
// head back over consumed slots).
func (in *intake) behind(seq uint16) bool {
	d := int16(seq - in.highest)
	return d <= -int16(in.cfg.maxLate) || d <= 0 && in.released && int16(seq-in.lastReleased) <= 0
}

// push filters p and, when it is worth keeping, pushes a copy into the
// reorder buffer. restarted reports that the buffer was replaced first
// because the stream restarted or jumped ahead beyond the window.
func (in *intake) push(p *rtp.Packet) (restarted bool) {
	in.stats.inc(cPushed)
	if !in.locked {
		in.locked, in.ssrc, in.pt = true, p.SSRC, p.PayloadType
	}
	if p.SSRC != in.ssrc || p.PayloadType != in.pt {
		if p.SSRC != in.candSSRC || p.PayloadType != in.candPT {
			in.candSSRC, in.candPT, in.candRun = p.SSRC, p.PayloadType, 0
		}
		if in.candRun++; in.candRun < resyncAfter {
			in.stats.inc(cForeign)
			return false
		}
		in.restart()
		in.ssrc, in.pt = p.SSRC, p.PayloadType
		restarted = true
	}
	in.candRun = 0

	payload, marker := p.Payload, p.Marker
	switch {
	case len(payload) == 0:
		in.stats.inc(cPadding)
		if in.cfg.padding == nil {
			return restarted
		}
		payload, marker = in.cfg.padding, true
	case len(payload) > maxPayload || !in.cfg.valid(payload):
		in.stats.inc(cMalformed)
		return restarted
	}

	seq, ts := p.SequenceNumber, p.Timestamp
	if in.started {
		switch {
		case in.behind(seq):
			if in.lateRun++; in.lateRun < resyncAfter {
				in.stats.inc(cLate)
				return restarted
			}
			in.restart()
			restarted = true
		case int16(seq-in.base()) >= int16(in.cfg.maxLate):
			// Too far ahead to keep what is buffered: the samplebuilder would
			// force it out.
			in.restart()
			restarted = true
		case in.fillers.has(seq):
			in.stats.inc(cLate) // given up on already
			return restarted
		case in.held.has(seq):
			in.stats.inc(cDuplicate)
			return restarted
		}
	}
	in.lateRun = 0
	in.missing.del(seq)

	switch {
	case !in.started:
		in.started, in.highest, in.newestTS = true, seq, ts
		in.lowest, in.firstTS = seq, ts
	case int16(seq-in.highest) > 0:
		in.noteHoles(in.highest+1, seq, ts)
		in.highest, in.newestTS = seq, ts
	case !in.popping && int16(seq-in.lowest) < 0:
		in.noteHoles(seq+1, in.lowest, ts)
		in.lowest = seq
	}
	if !in.popping && ts != in.firstTS {
		in.popping = true
		if !in.released {
			in.released, in.lastReleased = true, in.lowest-1
		}
	}
	in.insert(seq, ts, marker, payload)
	in.fillHoles()
	return restarted
}

// insert pushes a pooled copy of a packet into the buffer.
func (in *intake) insert(seq uint16, ts uint32, marker bool, payload []byte) {
	c := in.get()
	c.Marker = marker
	c.PayloadType = in.pt
	c.SequenceNumber = seq
	c.Timestamp = ts
	c.SSRC = in.ssrc
	c.Payload = append(c.Payload[:0], payload...)
	in.held.add(seq)
	in.nheld++
	in.sb.Push(c)
}

// noteHoles records the sequence numbers from up to end, excluded, as
// missing. When the list is full they go unrecorded: the buffer then waits
// for them until a packet a window ahead restarts it.
func (in *intake) noteHoles(from, end uint16, ts uint32) {
	if in.cfg.filler == nil || end-from > in.cfg.maxLate || len(in.holes)+int(end-from) > cap(in.holes) {
		return
	}
	for s := from; s != end; s++ {
		in.missing.add(s)
		in.holes = append(in.holes, hole{seq: s, ts: ts})
	}
}

// fillHoles gives up on the packets missing for longer than maxDelay of
// media, and fills their holes.
func (in *intake) fillHoles() {
	limit := int32(in.cfg.maxDelay.Seconds() * float64(in.cfg.clockRate))
	n := 0
	for ; n < len(in.holes); n++ {
		h := in.holes[n]
		if !in.missing.has(h.seq) {
			continue // arrived
		}
		if in.behind(h.seq) {
			in.missing.del(h.seq)
			continue
		}
		if int32(in.newestTS-h.ts) <= limit {
			break
		}
		in.missing.del(h.seq)
		in.stats.inc(cLost)
		in.fillers.add(h.seq)
		in.insert(h.seq, h.ts, true, in.cfg.filler)
	}
	if n > 0 {
		in.holes = in.holes[:copy(in.holes, in.holes[n:])]
	}
}

func (in *intake) get() *rtp.Packet {
	if n := len(in.free); n > 0 {
		p := in.free[n-1]
		in.free[n-1] = nil
		in.free = in.free[:n-1]
		return p
	}
	return &rtp.Packet{Header: rtp.Header{Version: 2}}
}

// pop returns the next complete sample, or nil. The samplebuilder builds
// at most one sample per Pop, and returns nil after dropping a broken one
// even when a good one follows: keep asking while packets are released.
func (in *intake) pop() *media.Sample {
	if !in.popping {
		return nil
	}
	for {
		before := in.nheld
		if s := in.sb.Pop(); s != nil {
			in.stats.add(in.cfg.dropped, uint64(s.PrevDroppedPackets))
			return s
		}
		if in.nheld == before {
			return nil
		}
	}
}
