// Package impl implements the autoscaling gate and the cheap watches that open it.
package impl

import (
	"context"
	"sync"
	"time"

	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
)

// gate holds the two halves. Each channel is closed once under its sync.Once; the snapshot
// fields are guarded by mu so Status is consistent with IsEnabled.
type gate struct {
	enabledOnce sync.Once
	enabled     chan struct{}
	syncedOnce  sync.Once
	synced      chan struct{}
	now         func() time.Time
	onOpen      func(def.Trigger, time.Time)
	onSynced    func(time.Time)

	mu       sync.Mutex
	openedAt time.Time
	trigger  *def.Trigger
	syncedAt time.Time
}

func newGate(now func() time.Time, onOpen func(def.Trigger, time.Time), onSynced func(time.Time)) *gate {
	return &gate{
		enabled:  make(chan struct{}),
		synced:   make(chan struct{}),
		now:      now,
		onOpen:   onOpen,
		onSynced: onSynced,
	}
}

func (g *gate) Enable(trigger def.Trigger) bool {
	opened := false
	g.enabledOnce.Do(func() {
		at := g.now()
		g.mu.Lock()
		g.openedAt, g.trigger = at, &trigger
		g.mu.Unlock()
		close(g.enabled)
		opened = true
		g.onOpen(trigger, at)
	})
	return opened
}

func (g *gate) IsEnabled() bool {
	select {
	case <-g.enabled:
		return true
	default:
		return false
	}
}

func (g *gate) Enabled() <-chan struct{} { return g.enabled }

func (g *gate) WaitForEnable(ctx context.Context) bool { return wait(ctx, g.enabled) }

func (g *gate) MarkPodCollectionSynced() {
	g.syncedOnce.Do(func() {
		at := g.now()
		g.mu.Lock()
		g.syncedAt = at
		g.mu.Unlock()
		close(g.synced)
		g.onSynced(at)
	})
}

func (g *gate) PodCollectionSynced() <-chan struct{} { return g.synced }

func (g *gate) WaitForPodCollectionSynced(ctx context.Context) bool { return wait(ctx, g.synced) }

func (g *gate) status() def.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := def.Status{OpenedAt: g.openedAt, PodCollectionSyncedAt: g.syncedAt}
	if g.trigger != nil {
		t := *g.trigger
		s.Open, s.Trigger = true, &t
	}
	s.PodCollectionSynced = !g.syncedAt.IsZero()
	return s
}

// wait returns true once ch is closed, false if ctx is done first. A closed ch wins over a
// done ctx so that callers never miss an already open gate.
func wait(ctx context.Context, ch <-chan struct{}) bool {
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
