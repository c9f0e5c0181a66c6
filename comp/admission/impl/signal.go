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

// latch is closed once, by the first fire.
type latch struct {
	once sync.Once
	ch   chan struct{}
}

func newLatch() *latch { return &latch{ch: make(chan struct{})} }

func (l *latch) fire() { l.once.Do(func() { close(l.ch) }) }

func (l *latch) fired() <-chan struct{} { return l.ch }
