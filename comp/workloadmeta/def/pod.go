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
	// OOMKills lists the containers whose last termination was an OOM kill (nil for almost
	// every pod): the local recommender bumps memory after one.
	OOMKills []OOMKill
}

// OOMKill is a container's last termination by the out-of-memory killer.
type OOMKill struct {
	Container string
	At        time.Time
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

// ResourceValue is one named resource amount (cpu, memory, ...) in thousandths of its unit:
// millicores for cpu, millibytes for memory. An int64 is a third of a resource.Quantity, and
// milli precision is what the API itself guarantees for these resources.
type ResourceValue struct {
	Name       string
	MilliValue int64
}

// Quantity returns the amount as a resource.Quantity (decimal SI for cpu, binary SI otherwise).
func (r ResourceValue) Quantity() *resource.Quantity {
	format := resource.BinarySI
	if r.Name == "cpu" {
		format = resource.DecimalSI
	}
	return resource.NewMilliQuantity(r.MilliValue, format)
}

// GetID implements Entity.
func (p *Pod) GetID() EntityID { return EntityID{Kind: KindPod, ID: p.UID} }
