package compositor

import (
	"sync"
)

// tilePool runs the draws of a batch of tiles on a bounded set of
// goroutines, the rendering goroutine among them. Tiles are independent, so
// a 9-up render on two cores takes about half the wall time of a serial one,
// for the same CPU. The pool belongs to its Compositor: New starts it and
// Close ends it, waiting for its goroutines.
type tilePool struct {
	workers int
	work    chan int // indices into the compositor's batch
	pending sync.WaitGroup
	exited  sync.WaitGroup
	do      func(int)
}

func startTilePool(workers int, do func(int)) *tilePool {
	p := &tilePool{workers: workers, do: do}
	if workers <= 1 {
		return p
	}
	p.work = make(chan int, 2*workers)
	for range workers - 1 {
		p.exited.Add(1)
		go p.loop()
	}
	return p
}

func (p *tilePool) loop() {
	defer p.exited.Done()
	for i := range p.work {
		p.do(i)
		p.pending.Done()
	}
}

// run calls do(0) … do(n-1), spread over the pool, and returns once all
// have returned. It does not allocate.
func (p *tilePool) run(n int) {
	if p.workers <= 1 || n <= 1 {
		for i := range n {
			p.do(i)
		}
		return
	}
	p.pending.Add(n - 1)
	for i := 1; i < n; i++ {
		select {
		case p.work <- i:
		default:
			// Every worker is busy and the queue is full: draw it here.
			p.do(i)
			p.pending.Done()
		}
	}
	p.do(0)
	// Help with what is still queued rather than wait idle.
	for {
		select {
		case i := <-p.work:
			p.do(i)
			p.pending.Done()
			continue
		default:
		}
		break
	}
	p.pending.Wait()
}

// close ends the pool's goroutines and waits for them.
func (p *tilePool) close() {
	if p.work != nil {
		close(p.work)
		p.exited.Wait()
		p.work = nil
	}
}
