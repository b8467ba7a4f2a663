package worker

import (
	"sync"
	"time"
)

// idleTimer fires when the stage has had no publisher for a while; a zero
// timeout never fires.
type idleTimer struct {
	timeout time.Duration
	expired chan struct{}
	mu      sync.Mutex
	t       *time.Timer
	once    sync.Once
}

func newIdleTimer(timeout time.Duration) *idleTimer {
	it := &idleTimer{timeout: timeout, expired: make(chan struct{})}
	it.set(false) // nobody publishes until the events channel says so
	return it
}

// set records whether anyone publishes.
func (it *idleTimer) set(active bool) {
	if it.timeout <= 0 {
		return
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	switch {
	case active && it.t != nil:
		it.t.Stop()
		it.t = nil
	case !active && it.t == nil:
		it.t = time.AfterFunc(it.timeout, func() { it.once.Do(func() { close(it.expired) }) })
	}
}

func (it *idleTimer) stop() { it.set(true) }
