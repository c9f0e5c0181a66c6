package fxutiltest

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// DPA is a minimal valid DatadogPodAutoscaler for the Deployment target, as a dynamic client
// writes it.
func DPA(namespace, name, target string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha2.SchemeGroupVersion.String(), "kind": "DatadogPodAutoscaler",
		"metadata": map[string]any{"namespace": namespace, "name": name},
		"spec": map[string]any{
			"targetRef":  map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
			"objectives": []any{map[string]any{"type": "PodResource", "podResource": map[string]any{"name": "cpu", "value": map[string]any{"type": "Utilization", "utilization": int64(70)}}}},
		},
	}}
}
