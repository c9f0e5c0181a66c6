// Package def defines the DPA cache: the one shared informer of DatadogPodAutoscalers in a
// lazyscale process. The gate's trigger, the DPA view, the DPA controller and the cluster
// profile controller all read it, so a DPA is listed and watched once, not once per reader.
//
// The cache is always on when workload autoscaling is enabled: DPAs are few and small, and
// the first one is what opens the gate.
package def

import (
	"context"

	"k8s.io/client-go/tools/cache"
)

// Component is the DPA cache. Its methods are safe for concurrent use.
type Component interface {
	// Informer is the shared informer of DPAs as *unstructured.Unstructured, indexed by
	// namespace. It is nil when workload autoscaling is disabled. Readers add their handlers
	// (before or after it runs) and must DeepCopy an object before changing it: the cache
	// owns them. The component runs it; readers never call Run.
	Informer() cache.SharedIndexInformer
	// WaitForSync blocks until the initial list is in the cache (true) or ctx is done
	// (false). Everything that decides from the cache waits for it first: an unsynced cache
	// looks like a cluster with fewer DPAs. It returns false at once when disabled.
	WaitForSync(ctx context.Context) bool
}
