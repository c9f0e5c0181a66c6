// Package def defines the autoscaling Gate: the one switch between a dormant autoscaling
// stack that costs nothing and an active one.
//
// The gate has two halves, each a channel closed exactly once:
//   - enabled: the first autoscaling trigger (a DPA, or a workload or namespace opted into a
//     cluster profile) has been seen; deferred work such as the pod collector may start;
//   - pod collection synced: the pod collector has finished its initial sync; the
//     autoscaling controllers and the webhook patcher may start.
//
// The gate never closes again once open: scaling the stack down when the last DPA goes away
// would drop state the webhook and controllers rely on for in-flight rollouts.
package def

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/tools/cache"
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

// Status is a snapshot of the gate.
type Status struct {
	Open                  bool      `json:"open"`
	OpenedAt              time.Time `json:"opened_at,omitzero"`
	Trigger               *Trigger  `json:"trigger,omitempty"`
	PodCollectionSynced   bool      `json:"pod_collection_synced"`
	PodCollectionSyncedAt time.Time `json:"pod_collection_synced_at,omitzero"`
	// WorkloadAutoscaling is false when autoscaling.workload.enabled is false: no trigger
	// watches run and the gate never opens on its own.
	WorkloadAutoscaling bool `json:"workload_autoscaling"`
}

// Component is the gate. All methods are safe for concurrent use and never block, except
// the Wait methods, which block until the half opens or ctx is done.
type Component interface {
	// Enable opens the gate with the given trigger. Only the first call has an effect; it
	// returns true for that call.
	Enable(trigger Trigger) bool
	// IsEnabled reports whether the gate is open.
	IsEnabled() bool
	// Enabled returns a channel closed when the gate opens.
	Enabled() <-chan struct{}
	// WaitForEnable blocks until the gate opens (true) or ctx is done (false).
	WaitForEnable(ctx context.Context) bool
	// MarkPodCollectionSynced records that the pod collection finished its initial sync.
	// Idempotent. It does not open the gate: an eager pod collector may sync first.
	MarkPodCollectionSynced()
	// PodCollectionSynced returns a channel closed once MarkPodCollectionSynced was called.
	PodCollectionSynced() <-chan struct{}
	// WaitForPodCollectionSynced blocks until the pod collection is synced (true) or ctx is
	// done (false).
	WaitForPodCollectionSynced(ctx context.Context) bool
	// Status returns a snapshot.
	Status() Status
	// Autoscalers is the shared DPA informer the gate watches for its trigger. The autoscaling
	// controllers add their handlers to it rather than opening a second DPA watch. It is nil
	// when workload autoscaling is disabled. Its objects are owned by the cache: DeepCopy
	// before changing one.
	Autoscalers() cache.SharedIndexInformer
}
