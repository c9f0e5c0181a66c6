package def

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResolveOwner returns the workload that controls a pod: the Deployment for a pod of one of its
// ReplicaSets, the StatefulSet, or the direct controller otherwise; zero if none. A ReplicaSet
// created by a Deployment is named "<deployment>-<pod-template-hash>" and its pods carry that
// hash as a label: when both agree the owner is the Deployment, without reading the ReplicaSet.
// The webhook uses the same rule on pods that do not exist yet.
func ResolveOwner(p *corev1.Pod) Owner {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return Owner{}
	}
	if ref.Kind == "ReplicaSet" {
		if hash := p.Labels["pod-template-hash"]; hash != "" {
			if deploy, ok := strings.CutSuffix(ref.Name, "-"+hash); ok && deploy != "" {
				return Owner{Kind: "Deployment", Name: deploy}
			}
		}
	}
	return Owner{Kind: ref.Kind, Name: ref.Name}
}
