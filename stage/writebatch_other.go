//go:build !linux

package stage

import "net"

type sysBatch struct{}

// sender sends a batch a datagram at a time where sendmmsg is missing.
func sender(c *net.UDPConn) func(*writeBatch) { return sendEach(c) }
