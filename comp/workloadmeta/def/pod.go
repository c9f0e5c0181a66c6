package def

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Pod is the slim pod entity: only what autoscaling reads. Strings that repeat across pods
// (namespaces, owners, label keys and values, container names) are interned by the collector.
type Pod struct {
	Namespace string
	Name      string
	UID       string
	// Owner is the workload that controls the pod: the Deployment for a pod of one of its
	// ReplicaSets, the StatefulSet, or the direct controller otherwise. Zero if none.
	Owner   Owner
	Phase   string
	Ready   bool
	Created time.Time
	Labels  map[string]string
	// Annotations holds only the autoscaling.datadoghq.com/* annotations.
	Annotations map[string]string
	Containers  []Container
}

// Owner is a workload reference.
type Owner struct {
	Kind string
	Name string
}

// Container is one container's resources.
type Container struct {
	Name     string
	Requests []ResourceValue
	Limits   []ResourceValue
}

// ResourceValue is one named resource quantity (cpu, memory, ...).
type ResourceValue struct {
	Name     string
	Quantity resource.Quantity
}

// GetID implements Entity.
func (p *Pod) GetID() EntityID { return EntityID{Kind: KindPod, ID: p.UID} }
