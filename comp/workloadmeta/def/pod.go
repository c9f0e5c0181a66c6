package def

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unique"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Pod is the slim pod entity: only what autoscaling reads, a few hundred bytes a pod.
//
// What autoscaling reads of a pod is its identity and owner (to find the pods of a target),
// its readiness and phase, the two annotations the webhook writes, and per container its
// requests, limits and OOM kills. Labels are not kept: pods are matched to a target by their
// owner, resolved once when the entity is built. Strings that repeat across pods (namespaces,
// owners, phases, recommendation ids) are interned by the collector, and so are whole
// containers: the pods of one workload share one copy of each.
type Pod struct {
	Namespace string
	Name      string
	UID       string
	// Owner is the workload that controls the pod: the Deployment for a pod of one of its
	// ReplicaSets, the StatefulSet, or the direct controller otherwise. Zero if none.
	Owner Owner
	Phase string
	Ready bool
	// AutoscalerID and RecID are the pod's autoscaling.datadoghq.com/autoscaler-id and rec-id
	// annotations ("" when absent): the DPA whose recommendation the webhook applied, and
	// which one.
	AutoscalerID string
	RecID        string
	// Containers are the containers, then the native sidecars, in the pod's order.
	Containers []unique.Handle[Container]
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

// Container is one container's name and resources. It is comparable, so that identical
// containers across pods are held once (unique.Make).
type Container struct {
	Name     string
	Requests Resources
	Limits   Resources
}

// Resources is a container's requests or its limits. CPU and memory, the resources
// autoscaling scales, are held as amounts in thousandths of their unit (millicores,
// millibytes: the precision the API itself guarantees); any other resource (ephemeral
// storage, extended resources) is kept in Other, rare enough to be encoded.
type Resources struct {
	CPUMilli, MemoryMilli int64
	HasCPU, HasMemory     bool
	// Other encodes the other resources as "name=milli" pairs, sorted by name, separated by
	// spaces (resource names hold no spaces).
	Other string
}

// NewResources converts a resource list.
func NewResources(rl corev1.ResourceList) Resources {
	var r Resources
	var other []string
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.CPUMilli, r.HasCPU = q.MilliValue(), true
		case corev1.ResourceMemory:
			r.MemoryMilli, r.HasMemory = q.MilliValue(), true
		default:
			other = append(other, string(name)+"="+strconv.FormatInt(q.MilliValue(), 10))
		}
	}
	slices.Sort(other)
	r.Other = strings.Join(other, " ")
	return r
}

// List converts back to a resource list (nil when empty): cpu as a decimal quantity, the
// others as binary ones.
func (r Resources) List() corev1.ResourceList {
	if !r.HasCPU && !r.HasMemory && r.Other == "" {
		return nil
	}
	rl := corev1.ResourceList{}
	if r.HasCPU {
		rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(r.CPUMilli, resource.DecimalSI)
	}
	if r.HasMemory {
		rl[corev1.ResourceMemory] = *resource.NewMilliQuantity(r.MemoryMilli, resource.BinarySI)
	}
	for _, pair := range strings.Fields(r.Other) {
		name, v, _ := strings.Cut(pair, "=")
		milli, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue // built by NewResources: cannot happen
		}
		rl[corev1.ResourceName(name)] = *resource.NewMilliQuantity(milli, resource.BinarySI)
	}
	return rl
}

// ContainerList returns the pod's containers, in order.
func (p *Pod) ContainerList() []Container {
	out := make([]Container, len(p.Containers))
	for i, h := range p.Containers {
		out[i] = h.Value()
	}
	return out
}

// GetID implements Entity.
func (p *Pod) GetID() EntityID { return EntityID{Kind: KindPod, ID: p.UID} }
