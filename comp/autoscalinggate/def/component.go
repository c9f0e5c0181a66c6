// Package def defines the autoscaling Gate: the one switch between a dormant autoscaling
// stack that costs nothing and an active one.
//
// The gate opens on the first autoscaling trigger (a DPA, or a workload or namespace opted
// into a cluster profile). Deferred work waits on it: the pod collector starts, and the
// autoscaling stack follows once the pods and the DPA cache have synced (states those
// components own, not the gate).
//
// The gate does not close again yet: scaling the stack down when the last DPA goes away
// would drop state the webhook and controllers rely on for in-flight rollouts.
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
	Open     bool      `json:"open"`
	OpenedAt time.Time `json:"opened_at,omitzero"`
	Trigger  *Trigger  `json:"trigger,omitempty"`
	// WorkloadAutoscaling is false when autoscaling.workload.enabled is false: no trigger
	// watches run and the gate never opens on its own.
	WorkloadAutoscaling bool `json:"workload_autoscaling"`
}

// Component is the gate. All methods are safe for concurrent use and never block, except
// Wait.
type Component interface {
	// Open opens the gate with the given trigger. Only the first call has an effect; it
	// returns true for that call.
	Open(trigger Trigger) bool
	// IsOpen reports whether the gate is open.
	IsOpen() bool
	// Opened returns a channel closed when the gate opens, for select.
	Opened() <-chan struct{}
	// Wait blocks until the gate is open (true) or ctx is done (false). An open gate wins
	// over a done ctx.
	Wait(ctx context.Context) bool
	// Status returns a snapshot.
	Status() Status
}
