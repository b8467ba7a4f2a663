//go:build security

package securitytest

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Summary(os.Stdout)
	os.Exit(code)
}
