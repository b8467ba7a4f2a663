package stage

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestBatchConn: outside a fan-out pass a datagram goes out at once; in a
// pass datagrams wait for its end, or for a full batch, and then reach
// each destination whole and in order.
func TestBatchConn(t *testing.T) {
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	bc := newBatchConn(listen())
	rcv := []*net.UDPConn{listen(), listen()}
	read := func(c *net.UDPConn, wait time.Duration) []byte {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 2000)
		n, err := c.Read(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	datagram := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 100+i*10) }

	if _, err := bc.WriteTo(datagram(1), rcv[0].LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got := read(rcv[0], time.Second); !bytes.Equal(got, datagram(1)) {
		t.Fatalf("outside a pass: got %d bytes, want the datagram at once", len(got))
	}

	bc.begin()
	for i := range 10 {
		_, _ = bc.WriteToAddrPort(datagram(i), rcv[i%2].LocalAddr().(*net.UDPAddr).AddrPort())
	}
	if got := read(rcv[0], 50*time.Millisecond); got != nil {
		t.Fatal("a datagram left before the pass ended")
	}
	for i := 10; i < 100; i++ {
		_, _ = bc.WriteToAddrPort(datagram(i), rcv[i%2].LocalAddr().(*net.UDPAddr).AddrPort())
	}
	// The first writeBatchSize went when the batch filled up.
	if got := read(rcv[0], time.Second); !bytes.Equal(got, datagram(0)) {
		t.Fatalf("a full batch: got %d bytes, want datagram 0", len(got))
	}
	bc.end()
	for i := 1; i < 100; i++ {
		if i == 1 {
			if got := read(rcv[1], time.Second); !bytes.Equal(got, datagram(1)) {
				t.Fatalf("datagram 1: got %d bytes", len(got))
			}
			continue
		}
		if got := read(rcv[i%2], time.Second); !bytes.Equal(got, datagram(i)) {
			t.Fatalf("datagram %d: got %d bytes, want %d", i, len(got), len(datagram(i)))
		}
	}
	if bc.active != 0 || bc.pending.n != 0 {
		t.Errorf("after the pass: %d passes, %d datagrams queued", bc.active, bc.pending.n)
	}
}

// TestBatchConnAllocatesNothing: queuing and sending a pass reuses the
// batches.
func TestBatchConnAllocatesNothing(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bc := newBatchConn(c)
	to := r.LocalAddr().(*net.UDPAddr).AddrPort()
	b := make([]byte, 1200)
	if n := testing.AllocsPerRun(100, func() {
		bc.begin()
		for range 8 {
			_, _ = bc.WriteToAddrPort(b, to)
		}
		bc.end()
	}); n != 0 {
		t.Errorf("%v allocations a pass", n)
	}
}
