package stage

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysBatch is a batch as sendmmsg(2) takes it. Its pointers are set once
// and point into the batch itself.
type sysBatch struct {
	ready bool
	hdrs  [writeBatchSize]unix.Mmsghdr
	iovs  [writeBatchSize]unix.Iovec
	names [writeBatchSize]unix.RawSockaddrInet6 // or an Inet4 in its first bytes
}

// sender sends a batch with sendmmsg: one system call for up to
// writeBatchSize datagrams.
func sender(c *net.UDPConn) func(*writeBatch) {
	rc, err := c.SyscallConn()
	if err != nil {
		return sendEach(c)
	}
	la, _ := c.LocalAddr().(*net.UDPAddr)
	v4 := la != nil && la.IP.To4() != nil
	return func(wb *writeBatch) {
		s := &wb.sys
		if !s.ready {
			s.ready = true
			for i := range s.hdrs {
				s.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
				s.hdrs[i].Hdr.Iov = &s.iovs[i]
				s.hdrs[i].Hdr.SetIovlen(1)
				s.iovs[i].Base = &wb.bufs[i][0]
			}
		}
		for i := range wb.n {
			s.iovs[i].SetLen(wb.lens[i])
			s.hdrs[i].Hdr.Namelen = putSockaddr(&s.names[i], wb, i, v4)
		}
		sent, n := 0, wb.n
		_ = rc.Write(func(fd uintptr) bool {
			for sent < n {
				r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[sent])),
					uintptr(n-sent), 0, 0, 0)
				switch {
				case e == unix.EAGAIN:
					return false // the socket's buffer is full: wait until it drains
				case e == unix.EINTR:
				case e != 0 || r == 0:
					sent++ // sendmmsg stops at a datagram it cannot send: that one is lost
				default:
					sent += int(r)
				}
			}
			return true
		})
	}
}

// putSockaddr writes the batch's i-th destination as a sockaddr of the
// socket's family and returns its length.
func putSockaddr(sa *unix.RawSockaddrInet6, wb *writeBatch, i int, v4 bool) uint32 {
	ap := wb.addrs[i]
	port := ap.Port()
	if v4 {
		if !ap.Addr().Unmap().Is4() {
			return 0 // an IPv6 destination on an IPv4 socket: sendmmsg refuses it
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Port = port<<8 | port>>8 // network byte order
		sa4.Addr = ap.Addr().Unmap().As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	sa.Port = port<<8 | port>>8
	sa.Flowinfo = 0
	sa.Addr = ap.Addr().As16()
	sa.Scope_id = 0
	return unix.SizeofSockaddrInet6
}
