package client

import "testing"

// IgnoreDTLSClose makes the connections of the test ignore a stage's DTLS
// close_notify, as if the stage's node had been killed: loss is then
// noticed through ICE alone.
func IgnoreDTLSClose(t testing.TB) {
	t.Helper()
	ignoreDTLSClose.Store(true)
	t.Cleanup(func() { ignoreDTLSClose.Store(false) })
}
