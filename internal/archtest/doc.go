// Package archtest holds no code: its test checks that dependencies
// between this module's packages run downhill, from the binary through the
// control plane and the data plane to the media core and the pure
// packages under it.
package archtest
