package def

import corev1 "k8s.io/api/core/v1"

// ScaledContainers are the containers of a pod (or pod template) whose resources vertical
// scaling sets: the regular containers, then the native sidecars (init containers with
// restartPolicy Always), which run beside them for the pod's whole life. Other init containers
// run to completion before the pod starts and are left alone. The pointers are into spec.
func ScaledContainers(spec *corev1.PodSpec) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(spec.Containers)+len(spec.InitContainers))
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	for i := range spec.InitContainers {
		if IsNativeSidecar(&spec.InitContainers[i]) {
			out = append(out, &spec.InitContainers[i])
		}
	}
	return out
}

// IsNativeSidecar reports an init container that keeps running beside the pod's containers.
func IsNativeSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// ScaledContainerValues is ScaledContainers as copies.
func ScaledContainerValues(spec *corev1.PodSpec) []corev1.Container {
	ptrs := ScaledContainers(spec)
	out := make([]corev1.Container, len(ptrs))
	for i, c := range ptrs {
		out[i] = *c
	}
	return out
}
