// Package v1alpha2 holds the Go types of the DatadogPodAutoscaler (DPA) and
// DatadogPodAutoscalerClusterProfile custom resources, API group datadoghq.com/v1alpha2.
// The CRDs under deploy/crds and zz_generated.deepcopy.go are generated from these types by
// controller-gen (make generate); edit the types, never the generated files.
//
// +kubebuilder:object:generate=true
// +groupName=datadoghq.com
package v1alpha2
