// Package def defines the autoscaling admission webhook: the mutating webhook that gives new
// pods the resources their DatadogPodAutoscaler recommends. Its pod patcher is wired in late,
// once the autoscaling stack is up; until then the webhook admits every pod unchanged without
// decoding it.
package def

import (
	corev1 "k8s.io/api/core/v1"

	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
)

// PodPatcher changes a pod being created. It is called concurrently, once per admission
// review, with a pod the webhook owns: the patcher may change it in place. It reports whether
// it changed anything. It must not block on the network: the apiserver waits for the answer.
type PodPatcher interface {
	PatchPod(pod *corev1.Pod) (changed bool, err error)
}

// PodPatcherFunc adapts a function to PodPatcher.
type PodPatcherFunc func(pod *corev1.Pod) (bool, error)

// PatchPod implements PodPatcher.
func (f PodPatcherFunc) PatchPod(pod *corev1.Pod) (bool, error) { return f(pod) }

// Component is the autoscaling webhook.
type Component interface {
	// SetPatcher publishes the patcher atomically; it may be called at any time from any
	// goroutine, and nil uninstalls it. Reviews in flight finish with the patcher they loaded.
	SetPatcher(p PodPatcher)
	// PatcherInstalled reports whether a patcher is set.
	PatcherInstalled() bool
	// Scope is what the webhook's entry covers, for the autoscaling stack to set (the targets
	// of the active DPAs: their namespaces, and with admission.scope workloads their pods
	// only) and to ask before a rollout; nil when the entry is cluster-wide (admission.scope
	// cluster).
	Scope() *admissiondef.NamespaceScope
}
