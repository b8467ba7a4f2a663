package worker_test

import (
	"os"
	"testing"

	"github.com/asticode/go-astiav"
)

func TestMain(m *testing.M) {
	astiav.SetLogLevel(astiav.LogLevelError) // FFmpeg's encoder statistics are noise here
	os.Exit(m.Run())
}
