// Package impl implements the autoscaling gate and the cheap watches that open it.
package impl

import (
	"context"
	"sync"
	"time"

	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
)

// gate is the switch. opened is closed once under once; the snapshot fields are guarded by
// mu so Status is consistent with IsOpen.
type gate struct {
	once   sync.Once
	opened chan struct{}
	now    func() time.Time
	onOpen func(def.Trigger, time.Time)

	mu       sync.Mutex
	openedAt time.Time
	trigger  *def.Trigger
}

func newGate(now func() time.Time, onOpen func(def.Trigger, time.Time)) *gate {
	return &gate{opened: make(chan struct{}), now: now, onOpen: onOpen}
}

func (g *gate) Open(trigger def.Trigger) bool {
	first := false
	g.once.Do(func() {
		at := g.now()
		g.mu.Lock()
		g.openedAt, g.trigger = at, &trigger
		g.mu.Unlock()
		close(g.opened)
		first = true
		g.onOpen(trigger, at)
	})
	return first
}

func (g *gate) IsOpen() bool {
	select {
	case <-g.opened:
		return true
	default:
		return false
	}
}

func (g *gate) Opened() <-chan struct{} { return g.opened }

// Wait returns true once the gate is open, false if ctx is done first. An open gate wins over
// a done ctx so that callers never miss it.
func (g *gate) Wait(ctx context.Context) bool {
	select {
	case <-g.opened:
		return true
	default:
	}
	select {
	case <-g.opened:
		return true
	case <-ctx.Done():
		return false
	}
}

func (g *gate) snapshot() def.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := def.Status{OpenedAt: g.openedAt}
	if g.trigger != nil {
		t := *g.trigger
		s.Open, s.Trigger = true, &t
	}
	return s
}
