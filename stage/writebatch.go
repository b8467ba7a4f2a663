package stage

import (
	"net"
	"net/netip"
	"sync"
)

// Batched writes on the media socket.
//
// On one socket (Config.UDPAddr) the datagrams of one packet to all its
// subscribers differ only in their destination, and a system call per
// datagram is most of what forwarding costs. While a fan-out writes a
// packet (begin … end), the socket queues the datagrams written to it and
// sends them with as few system calls as it can (sendmmsg on Linux); any
// other write (RTCP, ICE, DTLS, a NACK's resend) goes out at once while no
// fan-out writes, or with the next flush, at most one fan-out pass later.

// writeBatchSize is the most datagrams one system call sends: past about
// 8 a batch the call's own cost no longer counts.
const writeBatchSize = 64

// maxDatagram is the largest datagram queued: the MTU pion sends at, with
// room for SRTP's tag. A larger one goes out on its own.
const maxDatagram = 1500

// batchConn is the media socket as the ICE mux uses it.
type batchConn struct {
	*net.UDPConn
	send func(*writeBatch) // sends the batch's datagrams, and empties it

	mu      sync.Mutex
	active  int         // fan-out passes under way
	pending *writeBatch // datagrams queued
	free    []*writeBatch
}

// writeBatch is a set of datagrams to send at once. Its buffers are kept
// from batch to batch: queuing allocates nothing.
type writeBatch struct {
	n     int
	bufs  [writeBatchSize][maxDatagram]byte
	lens  [writeBatchSize]int
	addrs [writeBatchSize]netip.AddrPort
	sys   sysBatch // the system call's own arrays
}

func newBatchConn(c *net.UDPConn) *batchConn {
	return &batchConn{UDPConn: c, send: sender(c), pending: &writeBatch{}}
}

// ReadFromAddrPort and WriteToAddrPort make the ICE mux use the
// allocation-free netip.AddrPort path (ice.AddrPortReaderWriter).
func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

func (c *batchConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	c.mu.Lock()
	if c.active == 0 || len(b) > maxDatagram {
		c.mu.Unlock()
		return c.WriteToUDPAddrPort(b, addr)
	}
	wb := c.pending
	wb.lens[wb.n] = copy(wb.bufs[wb.n][:], b)
	wb.addrs[wb.n] = addr
	wb.n++
	if wb.n < writeBatchSize {
		c.mu.Unlock()
		return len(b), nil
	}
	c.pending = c.freeLocked()
	c.mu.Unlock()
	c.flush(wb)
	return len(b), nil
}

// WriteTo is WriteToAddrPort for a net.Addr.
func (c *batchConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(b, ua.AddrPort())
	}
	return c.UDPConn.WriteTo(b, addr)
}

// begin starts a fan-out pass: writes are queued until its end.
func (c *batchConn) begin() {
	c.mu.Lock()
	c.active++
	c.mu.Unlock()
}

// end ends a fan-out pass and sends what is queued, the pass's datagrams
// and any other writer's since the last flush.
func (c *batchConn) end() {
	c.mu.Lock()
	c.active--
	wb := c.pending
	if wb.n == 0 {
		c.mu.Unlock()
		return
	}
	c.pending = c.freeLocked()
	c.mu.Unlock()
	c.flush(wb)
}

// flush sends wb outside the lock, so other writers queue meanwhile, and
// keeps it for reuse.
func (c *batchConn) flush(wb *writeBatch) {
	c.send(wb)
	wb.n = 0
	c.mu.Lock()
	c.free = append(c.free, wb)
	c.mu.Unlock()
}

// freeLocked returns an empty batch: as many exist as flushes ever ran at
// once, one or two per core.
func (c *batchConn) freeLocked() *writeBatch {
	if n := len(c.free); n > 0 {
		wb := c.free[n-1]
		c.free = c.free[:n-1]
		return wb
	}
	return &writeBatch{}
}

// sendEach is the portable sender: a system call per datagram. Errors are
// the datagram's loss, as for any UDP send.
func sendEach(c *net.UDPConn) func(*writeBatch) {
	return func(wb *writeBatch) {
		for i := range wb.n {
			_, _ = c.WriteToUDPAddrPort(wb.bufs[i][:wb.lens[i]], wb.addrs[i])
		}
	}
}
