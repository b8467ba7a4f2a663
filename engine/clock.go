package engine

import (
	"context"
	"time"
)

// clock is the output clock: frame k is at media time k/framerate. In real
// time it waits until each frame's wall-clock time, measured from the first
// frame; an absolute clock, so that the output does not drift with the
// time spent encoding. Otherwise it never waits.
type clock struct {
	fps      int
	realtime bool
	start    time.Time
	timer    *time.Timer
	woke     time.Time // when the last wait returned
}

func newClock(fps int, realtime bool) *clock {
	return &clock{fps: fps, realtime: realtime}
}

// mediaTime is frame k's time in the output.
func (c *clock) mediaTime(k int) time.Duration {
	return time.Duration(k) * time.Second / time.Duration(c.fps)
}

// wait returns when frame k is due; false when ctx ended first.
func (c *clock) wait(ctx context.Context, k int) bool {
	if !c.realtime {
		return ctx.Err() == nil
	}
	if c.timer == nil {
		c.start = time.Now()
		c.timer = time.NewTimer(0)
	} else {
		c.timer.Reset(time.Until(c.start.Add(c.mediaTime(k))))
	}
	select {
	case <-ctx.Done():
		return false
	case <-c.timer.C:
		c.woke = time.Now()
		return true
	}
}

// late reports whether frame k's wait returned more than a frame after its
// time: the machine is too slow for its load.
func (c *clock) late(k int) bool {
	return c.realtime && c.woke.Sub(c.start.Add(c.mediaTime(k))) > time.Second/time.Duration(c.fps)
}

func (c *clock) stop() {
	if c.timer != nil {
		c.timer.Stop()
	}
}
