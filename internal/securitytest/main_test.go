//go:build security

package securitytest

import (
	"os"
	"testing"
)

// buildDir holds the stagehand command the attacks on serve run.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stagehand-securitytest-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	Summary(os.Stdout)
	os.Exit(code)
}
