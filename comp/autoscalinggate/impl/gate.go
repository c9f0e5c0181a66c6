// Package impl implements the autoscaling gate and the cheap watches that open it.
package impl

import (
	"context"
	"sync"
	"time"

	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
)

// gate is the switch, opened and closed in terms. Everything is guarded by mu; the callbacks
// run outside it.
//
// A term ends in two steps: Close cancels the term's context at once, and the term is over
// when the last member has left. A trigger arriving in between is kept and opens the next term
// then, so that no work of one term overlaps the next.
type gate struct {
	now     func() time.Time
	onOpen  func(t def.Trigger, at time.Time, term uint64)
	onClose func(term uint64, at time.Time)

	mu       sync.Mutex
	term     uint64 // the current term, or the last one
	open     bool
	closing  bool // closed, members still leaving
	openedAt time.Time
	closedAt time.Time
	trigger  *def.Trigger
	pending  *def.Trigger  // a trigger that came while closing
	openCh   chan struct{} // closed while a term is open; a new one once it closes
	termCtx  context.Context
	cancel   context.CancelFunc
	members  int
	closesAt time.Time // when the idle monitor closes the gate; zero when it does not
}

func newGate(now func() time.Time, onOpen func(def.Trigger, time.Time, uint64), onClose func(uint64, time.Time)) *gate {
	return &gate{now: now, onOpen: onOpen, onClose: onClose, openCh: make(chan struct{})}
}

// Open opens a new term unless one is open; while the last term is still closing, the
// trigger opens the next one as soon as it has closed.
func (g *gate) Open(trigger def.Trigger) bool {
	g.mu.Lock()
	if g.open {
		g.mu.Unlock()
		return false
	}
	if g.closing {
		if g.pending == nil {
			g.pending = &trigger
		}
		g.mu.Unlock()
		return false
	}
	term, at := g.openLocked(trigger)
	g.mu.Unlock()
	g.onOpen(trigger, at, term)
	return true
}

func (g *gate) openLocked(trigger def.Trigger) (uint64, time.Time) {
	g.term++
	g.open = true
	g.openedAt, g.trigger = g.now(), &trigger
	g.closedAt = time.Time{}
	g.termCtx, g.cancel = context.WithCancel(context.Background())
	close(g.openCh)
	return g.term, g.openedAt
}

// Close ends the current term: its context is cancelled now, and the gate is closed once
// every member has left. It returns false when no term is open.
func (g *gate) Close() bool {
	g.mu.Lock()
	if !g.open {
		g.mu.Unlock()
		return false
	}
	g.open, g.closing = false, true
	g.closedAt = g.now()
	g.closesAt = time.Time{}
	g.openCh = make(chan struct{})
	g.cancel()
	term, at := g.term, g.closedAt
	reopen := g.finishLocked()
	g.mu.Unlock()
	g.onClose(term, at)
	reopen()
	return true
}

// finishLocked ends the closing once no member is left, and opens the next term if a trigger
// came meanwhile. It returns what to call once mu is released.
func (g *gate) finishLocked() func() {
	if !g.closing || g.members > 0 {
		return func() {}
	}
	g.closing = false
	if g.pending == nil {
		return func() {}
	}
	t := *g.pending
	g.pending = nil
	term, at := g.openLocked(t)
	return func() { g.onOpen(t, at, term) }
}

// Join waits for an open term and joins it.
func (g *gate) Join(ctx context.Context) (context.Context, uint64, func(), bool) {
	for {
		g.mu.Lock()
		if g.open {
			g.members++
			term, termCtx := g.term, g.termCtx
			g.mu.Unlock()
			var once sync.Once
			return termCtx, term, func() { once.Do(g.leave) }, true
		}
		ch := g.openCh
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, 0, nil, false
		}
	}
}

func (g *gate) leave() {
	g.mu.Lock()
	g.members--
	reopen := g.finishLocked()
	g.mu.Unlock()
	reopen()
}

func (g *gate) IsOpen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

func (g *gate) Opened() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.openCh
}

// Wait returns true once a term is open, false if ctx is done first. An open gate wins over
// a done ctx so that callers never miss it.
func (g *gate) Wait(ctx context.Context) bool {
	ch := g.Opened()
	select {
	case <-ch:
		return true
	default:
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// setClosesAt records when the idle monitor will close the gate (zero: it will not).
func (g *gate) setClosesAt(at time.Time) {
	g.mu.Lock()
	g.closesAt = at
	g.mu.Unlock()
}

func (g *gate) snapshot() def.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := def.Status{Open: g.open, Closing: g.closing, Term: g.term, OpenedAt: g.openedAt, ClosedAt: g.closedAt, ClosesAt: g.closesAt}
	if g.trigger != nil {
		t := *g.trigger
		s.Trigger = &t
	}
	return s
}

// Status is the gate's part of the status; the component adds its configuration.
func (g *gate) Status() def.Status { return g.snapshot() }
