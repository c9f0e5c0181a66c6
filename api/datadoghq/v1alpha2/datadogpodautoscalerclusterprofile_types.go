package v1alpha2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// DatadogPodAutoscalerClusterProfile is a DPA template that workloads opt into with the
// autoscaling.datadoghq.com/profile label (on the workload or its namespace). A profile alone
// does not activate autoscaling: only a labelled workload or namespace does.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=dpacp,categories=autoscaling
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=='Valid')].status`
// +kubebuilder:printcolumn:name="Controlled Autoscalers",type=integer,JSONPath=`.status.controlledAutoscalers`
// +kubebuilder:printcolumn:name="Apply Mode",type=string,JSONPath=`.spec.template.applyPolicy.mode`
// +kubebuilder:printcolumn:name="Min Replicas",type=integer,JSONPath=`.spec.template.constraints.minReplicas`
// +kubebuilder:printcolumn:name="Max Replicas",type=integer,JSONPath=`.spec.template.constraints.maxReplicas`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DatadogPodAutoscalerClusterProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DatadogPodAutoscalerClusterProfileSpec   `json:"spec,omitempty"`
	Status DatadogPodAutoscalerClusterProfileStatus `json:"status,omitempty"`
}

// DatadogPodAutoscalerClusterProfileList is a list of profiles.
//
// +kubebuilder:object:root=true
type DatadogPodAutoscalerClusterProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DatadogPodAutoscalerClusterProfile `json:"items"`
}

// DatadogPodAutoscalerClusterProfileSpec holds the template.
type DatadogPodAutoscalerClusterProfileSpec struct {
	// Template is the spec of generated DPAs, without targetRef and owner.
	Template DatadogPodAutoscalerTemplate `json:"template"`
}

// DatadogPodAutoscalerTemplate is a DPA spec without targetRef and owner.
type DatadogPodAutoscalerTemplate struct {
	// +optional
	// +kubebuilder:default={}
	ApplyPolicy *DatadogPodAutoscalerApplyPolicy `json:"applyPolicy,omitempty"`
	// Objectives default, as a DPA's, to the pods' CPU at 80 % of their requests.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Objectives []DatadogPodAutoscalerObjective `json:"objectives,omitempty"`
	// +optional
	// +kubebuilder:default={}
	Fallback *DatadogFallbackPolicy `json:"fallback,omitempty"`
	// +optional
	Constraints *DatadogPodAutoscalerConstraints `json:"constraints,omitempty"`
	// +optional
	Options *DatadogPodAutoscalerOptions `json:"options,omitempty"`
}

// DatadogPodAutoscalerClusterProfileStatus is the profile controller's view.
type DatadogPodAutoscalerClusterProfileStatus struct {
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// TemplateHash identifies the template generated DPAs were built from.
	// +optional
	TemplateHash string `json:"templateHash,omitempty"`
	// ControlledAutoscalers counts the DPAs generated from this profile.
	// +optional
	ControlledAutoscalers int32 `json:"controlledAutoscalers"`
}
