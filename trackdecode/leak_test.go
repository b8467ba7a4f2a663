package trackdecode

import (
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp"

	"github.com/stagehand-rt/stagehand/internal/testkit"
)

// TestCloseAndNoGoroutines checks the lifecycle: decoders start no
// goroutines, Close twice is safe, and a closed decoder refuses packets
// without crashing while its stats stay readable.
func TestCloseAndNoGoroutines(t *testing.T) {
	vs := newVideoStream(t, MimeTypeVP8, 160, 120, 6, 6)
	as := newAudioStream(t, 4)
	check := testkit.CheckGoroutines(t)
	for i := 0; i < 20; i++ {
		mime := MimeTypeVP8
		if i%2 == 1 {
			mime = MimeTypeH264
		}
		v, err := NewVideo(mime)
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAudio(MimeTypeOpus)
		if err != nil {
			t.Fatal(err)
		}
		if mime == MimeTypeVP8 {
			for _, p := range vs.all() {
				if err := v.Push(p, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, p := range as.packets {
			if err := a.Push(p, nil); err != nil {
				t.Fatal(err)
			}
		}
		v.Close()
		v.Close()
		a.Close()
		a.Close()
		if err := v.Push(vs.packets[0][0], nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Push after Close: %v, want ErrClosed", err)
		}
		if err := a.Push(as.packets[0], nil); !errors.Is(err, ErrClosed) {
			t.Errorf("audio Push after Close: %v, want ErrClosed", err)
		}
		_ = v.Stats()
		_ = a.Stats()
	}
	v, err := NewVideo(MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Push(nil, nil); !errors.Is(err, ErrNilPacket) {
		t.Errorf("Push(nil): %v, want ErrNilPacket", err)
	}
	check()
}

// TestConcurrentUse reads stats and keyframe state while a track is pushed,
// and closes it from another goroutine mid-stream (run with -race).
func TestConcurrentUse(t *testing.T) {
	s := newVideoStream(t, MimeTypeVP8, 160, 120, 24, 12)
	v, err := NewVideo(MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = v.Stats()
				_ = v.NeedsKeyframe()
				runtime.Gosched()
			}
		}
	}()
	pushed := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, p := range s.all() {
			if i == 40 {
				close(pushed)
			}
			if err := v.Push(p, func(*astiav.Frame, uint32) {}); err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
				return
			}
		}
	}()
	<-pushed
	v.Close()
	close(stop)
	wg.Wait()
}

// rssBytes reads this process's resident set size.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	pages, err := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// TestNoCMemoryGrowth cycles decoders through their whole life, with the
// FFmpeg contexts, packets and frames they allocate, and then runs one
// decoder through thousands of frames, far more often than a leak could
// hide in.
func TestNoCMemoryGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("long-running")
	}
	vs := newVideoStream(t, MimeTypeH264, 160, 120, 8, 4)
	as := newAudioStream(t, 4)
	lifetime := func() {
		v, err := NewVideo(MimeTypeH264)
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAudio(MimeTypeOpus)
		if err != nil {
			v.Close()
			t.Fatal(err)
		}
		for _, p := range vs.all() {
			_ = v.Push(p, nil)
		}
		for _, p := range as.packets {
			_ = a.Push(p, nil)
		}
		v.Close()
		a.Close()
	}
	// A leaked decoder context with its picture pool is over 1 MiB: 100
	// of them would be far above the limit.
	growth(t, "100 decoder lifetimes", 20, 100, 3, 8<<20, lifetime)

	long := newLooper(newVideoStream(t, MimeTypeVP8, 320, 240, testFrames, testGOP))
	v, err := NewVideo(MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	frame := 0
	frames := func() {
		for range testFrames {
			for _, p := range long.frame(frame) {
				_ = v.Push(p, nil)
			}
			frame++
		}
	}
	// A leaked packet buffer is about 8 KiB, a leaked picture 115 KiB:
	// 1200 of either would be above the limit.
	growth(t, "1200 frames", 2, 25, 3, 4<<20, frames)
	if st := v.Stats(); st.FramesDecoded < 77*testFrames-1 || st.DecodeErrors+st.FramesBroken+st.Lost != 0 {
		t.Errorf("stats %+v: every frame should have been decoded", st)
	}
}

// growth runs fn warm times, then rounds of n runs, and fails when the
// resident set grew by more than limit bytes in every round. A leak grows
// it in each round; the allocator settling (glibc's per-thread arenas, the
// race detector's shadow memory, other tests' load) grows it in one round
// and not the next, which a single measurement mistook for a leak.
func growth(t *testing.T, what string, warm, n, rounds int, limit int64, fn func()) {
	t.Helper()
	for range warm {
		fn()
	}
	least := int64(math.MaxInt64)
	for r := range rounds {
		runtime.GC()
		before := rssBytes(t)
		start := time.Now()
		for range n {
			fn()
		}
		runtime.GC()
		grown := rssBytes(t) - before
		t.Logf("%s, round %d: RSS grew by %d KiB in %v", what, r+1, grown/1024, time.Since(start))
		least = min(least, grown)
	}
	if least > limit {
		t.Errorf("RSS grew by at least %d MiB in each of %d rounds of %s: C memory is leaking", least>>20, rounds, what)
	}
}

// TestPacketReuse checks that Push copies what it keeps: the caller's
// packet is overwritten right after each Push, as a reader reusing one
// buffer would.
func TestPacketReuse(t *testing.T) {
	s := newVideoStream(t, MimeTypeVP8, 160, 120, 12, 12)
	v, err := NewVideo(MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	buf := make([]byte, 1500)
	var p rtp.Packet
	n := 0
	for _, orig := range s.all() {
		b, err := orig.MarshalTo(buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Unmarshal(buf[:b]); err != nil {
			t.Fatal(err)
		}
		if err := v.Push(&p, func(*astiav.Frame, uint32) { n++ }); err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = 0xa5
		}
	}
	if st := v.Stats(); n != 11 || st.FramesBroken+st.DecodeErrors != 0 {
		t.Errorf("%d frames decoded, stats %+v: want 11 and no errors", n, st)
	}
}
