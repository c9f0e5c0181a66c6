// Package def defines the autoscaling Gate: the one switch between a dormant autoscaling
// stack that costs nothing and an active one.
//
// The gate opens on the first autoscaling trigger (a DPA, or a workload or namespace opted
// into a cluster profile). Deferred work waits on it: the pod collector starts, and the
// autoscaling stack follows once the pods and the DPA cache have synced (states those
// components own, not the gate).
//
// The gate closes again when no trigger has existed for autoscaling.workload.idle_grace: the
// stack goes back to dormant, and the next trigger opens it as on the first day. Each open
// period is a term, numbered like a leadership term. Work joins a term (WhileOpen) and ends
// with it; the gate is closed only once every member has left, and a trigger arriving while
// it closes opens the next term then, so that nothing of one term overlaps or leaks into the
// next.
package def

import (
	"context"
	"fmt"
	"time"
)

// Trigger says what opened the gate.
type Trigger struct {
	// Kind is DatadogPodAutoscaler, Deployment, StatefulSet, Namespace, or Config.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

func (t Trigger) String() string {
	if t.Namespace == "" {
		return fmt.Sprintf("%s/%s", t.Kind, t.Name)
	}
	return fmt.Sprintf("%s/%s/%s", t.Kind, t.Namespace, t.Name)
}

// Status is a snapshot of the gate: the "gate" section of /status.
type Status struct {
	Open bool `json:"open"`
	// Closing: the term was closed and its work is stopping.
	Closing bool `json:"closing,omitempty"`
	// Term is the current term, or the last one when closed (0: never opened).
	Term     uint64    `json:"term"`
	OpenedAt time.Time `json:"opened_at,omitzero"`
	// Trigger is what opened the current (or last) term.
	Trigger *Trigger `json:"trigger,omitempty"`
	// ClosedAt is when the last term closed (zero while open).
	ClosedAt time.Time `json:"closed_at,omitzero"`
	// ClosesAt is when the gate closes if no trigger comes back (zero while a trigger exists,
	// or when it never closes).
	ClosesAt time.Time `json:"closes_at,omitzero"`
	// IdleGrace is autoscaling.workload.idle_grace ("0s": the gate never closes).
	IdleGrace string `json:"idle_grace,omitempty"`
	// WorkloadAutoscaling is false when autoscaling.workload.enabled is false: no trigger
	// watches run and the gate never opens on its own.
	WorkloadAutoscaling bool `json:"workload_autoscaling"`
}

// Component is the gate. All methods are safe for concurrent use and never block, except
// Wait.
type Component interface {
	// Open opens a term with the given trigger; it returns true when it did. An open gate
	// ignores it; a closing one opens the next term with it once closed.
	Open(trigger Trigger) bool
	// Close ends the current term (the idle monitor calls it); false when none is open.
	Close() bool
	// IsOpen reports whether a term is open.
	IsOpen() bool
	// Opened returns a channel closed while a term is open, for select. After the gate
	// closes it returns a new channel, closed when the next term opens.
	Opened() <-chan struct{}
	// Wait blocks until a term is open (true) or ctx is done (false). An open gate wins
	// over a done ctx.
	Wait(ctx context.Context) bool
	// Join waits for an open term and joins it: it returns the term's context (cancelled
	// when the gate closes), its number, and leave, which the member must call once its work
	// for the term has stopped. ok is false when ctx ended first.
	Join(ctx context.Context) (term context.Context, number uint64, leave func(), ok bool)
	// Status returns a snapshot.
	Status() Status
}

// WhileOpen runs fn under each term of the gate until ctx is done: it joins a term, calls fn
// with the term's context (cancelled when the gate closes or ctx ends), and leaves once fn
// has returned. fn runs at most once per term: if it returns early, WhileOpen waits for the
// term to end before joining the next. It blocks; run it in a goroutine.
func WhileOpen(ctx context.Context, g Component, fn func(term context.Context, number uint64)) {
	for {
		termCtx, n, leave, ok := g.Join(ctx)
		if !ok {
			return
		}
		runCtx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(termCtx, cancel)
		fn(runCtx, n)
		leave()
		select {
		case <-termCtx.Done():
		case <-ctx.Done():
		}
		stop()
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}
