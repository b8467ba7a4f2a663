package stage

import (
	"fmt"
	"net"

	"github.com/pion/ice/v4"
)

// mediaBuffer is the media socket's receive and send buffer: every
// publisher's packets and every subscriber's RTCP share it, more than the
// kernel's default (about 200 kB) holds in a burst. The kernel caps it at
// net.core.rmem_max / wmem_max.
const mediaBuffer = 4 << 20

// mediaSocket is the one UDP socket every peer's media uses when
// Config.UDPAddr is set (an ICE UDP mux): one port for a firewall, a
// container or a Kubernetes Service to open.
type mediaSocket struct {
	mux  *ice.UDPMuxDefault
	conn *batchConn // the fan-outs batch their writes on it
}

func listenMedia(addr string) (*mediaSocket, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("stage: media address %q: %w", addr, err)
	}
	if ua.IP == nil || ua.IP.IsUnspecified() {
		return nil, fmt.Errorf("stage: media address %q: give the IP clients reach (not a wildcard)", addr)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("stage: media socket: %w", err)
	}
	// Best effort: a smaller buffer only loses more in a burst.
	_ = conn.SetReadBuffer(mediaBuffer)
	_ = conn.SetWriteBuffer(mediaBuffer)
	bc := newBatchConn(conn)
	return &mediaSocket{mux: ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: bc}), conn: bc}, nil
}

// Addr is the socket's local address.
func (m *mediaSocket) Addr() net.Addr { return m.mux.LocalAddr() }

func (m *mediaSocket) close() { _ = m.mux.Close() }
