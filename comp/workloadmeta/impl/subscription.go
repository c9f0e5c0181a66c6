package impl

import (
	"sync"

	"github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// subscription holds an unbounded queue so that a slow subscriber never blocks the store or
// other subscribers, and never loses a bundle. One goroutine per subscription moves bundles
// from the queue to the subscriber's channel; Unsubscribe stops and joins it.
type subscription struct {
	name     string
	filter   matcher
	onRemove func(*subscription)

	mu      sync.Mutex
	queue   []def.EventBundle
	pending chan struct{} // one token when queue is non-empty
	out     chan def.EventBundle
	done    chan struct{}
	exited  chan struct{}
	once    sync.Once
	started bool
}

func newSubscription(name string, filter matcher, onRemove func(*subscription)) *subscription {
	return &subscription{
		name:     name,
		filter:   filter,
		onRemove: onRemove,
		pending:  make(chan struct{}, 1),
		out:      make(chan def.EventBundle),
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
}

func (s *subscription) Events() <-chan def.EventBundle { return s.out }

func (s *subscription) enqueue(b def.EventBundle) {
	s.mu.Lock()
	s.queue = append(s.queue, b)
	s.mu.Unlock()
	select {
	case s.pending <- struct{}{}:
	default:
	}
}

// start launches the pump unless the subscription was already ended.
func (s *subscription) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	s.started = true
	go s.pump()
}

func (s *subscription) pump() {
	defer close(s.exited)
	defer close(s.out)
	for {
		s.mu.Lock()
		var next def.EventBundle
		has := len(s.queue) > 0
		if has {
			next = s.queue[0]
			s.queue[0] = def.EventBundle{}
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		if !has {
			select {
			case <-s.pending:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.out <- next:
		case <-s.done:
			return
		}
	}
}

func (s *subscription) Unsubscribe() {
	s.once.Do(func() {
		s.onRemove(s)
		s.mu.Lock()
		close(s.done)
		started := s.started
		s.mu.Unlock()
		if started {
			<-s.exited
		} else {
			close(s.out)
		}
	})
}
