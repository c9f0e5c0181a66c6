package impl

import "sync"

// notifier is a coalescing wake-up: notify never blocks, and a burst of notifications wakes
// the receiver once.
type notifier chan struct{}

func newNotifier() notifier { return make(notifier, 1) }

func (n notifier) notify() {
	select {
	case n <- struct{}{}:
	default:
	}
}

// latch is closed by the first fire, until rearmed.
type latch struct {
	mu    sync.Mutex
	ch    chan struct{}
	fired bool
}

func newLatch() *latch { return &latch{ch: make(chan struct{})} }

func (l *latch) fire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.fired {
		l.fired = true
		close(l.ch)
	}
}

// done returns a channel closed once the latch has fired.
func (l *latch) done() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ch
}

// rearm makes the latch wait for the next fire.
func (l *latch) rearm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fired {
		l.fired = false
		l.ch = make(chan struct{})
	}
}
