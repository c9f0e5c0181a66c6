package impl

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podView is the part of a pod that patchers change, shaped like the pod so that JSON paths
// into it are paths into the pod. Container lists keep their length and order (the rest of
// each container is checked unchanged), so indexes match.
type podView struct {
	Metadata viewMeta `json:"metadata"`
	Spec     viewSpec `json:"spec"`
}

type viewMeta struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type viewSpec struct {
	InitContainers []viewContainer `json:"initContainers,omitempty"`
	Containers     []viewContainer `json:"containers"`
}

type viewContainer struct {
	Resources corev1.ResourceRequirements `json:"resources"`
}

func newPodView(p *corev1.Pod) podView {
	v := podView{Metadata: viewMeta{Labels: p.Labels, Annotations: p.Annotations}}
	v.Spec.InitContainers = viewContainers(p.Spec.InitContainers)
	v.Spec.Containers = viewContainers(p.Spec.Containers)
	return v
}

func viewContainers(cs []corev1.Container) []viewContainer {
	if cs == nil {
		return nil
	}
	out := make([]viewContainer, len(cs))
	for i := range cs {
		out[i].Resources = cs[i].Resources
	}
	return out
}

// sameOutsideView reports whether a and b differ only in what podView holds.
func sameOutsideView(a, b *corev1.Pod) bool {
	if len(a.Spec.Containers) != len(b.Spec.Containers) || len(a.Spec.InitContainers) != len(b.Spec.InitContainers) {
		return false
	}
	// Shallow copies with the view's fields cleared; nothing here mutates shared data.
	ra, rb := *a, *b
	ra.ObjectMeta, rb.ObjectMeta = withoutLabels(a.ObjectMeta), withoutLabels(b.ObjectMeta)
	ra.Spec.Containers, rb.Spec.Containers = withoutResources(a.Spec.Containers), withoutResources(b.Spec.Containers)
	ra.Spec.InitContainers, rb.Spec.InitContainers = withoutResources(a.Spec.InitContainers), withoutResources(b.Spec.InitContainers)
	// Plain reflect.DeepEqual: b started as a deep copy of a, so unchanged values are identical
	// down to their caches, and the semantic comparison (a third slower) buys nothing here.
	return reflect.DeepEqual(ra, rb)
}

func withoutLabels(m metav1.ObjectMeta) metav1.ObjectMeta {
	m.Labels, m.Annotations = nil, nil
	return m
}

func withoutResources(cs []corev1.Container) []corev1.Container {
	if cs == nil {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i := range cs {
		out[i] = cs[i]
		out[i].Resources = corev1.ResourceRequirements{}
	}
	return out
}
