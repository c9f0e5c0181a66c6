package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// DatadogPodAutoscaler is the v1alpha1 shape of a DPA. It is served, not stored: the apiserver
// stores v1alpha2.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:deprecatedversion:warning="datadoghq.com/v1alpha1 is stored as v1alpha2 without conversion: spec.policy and spec.targets are not kept, and lazyscale does not act on such a DPA; write datadoghq.com/v1alpha2 (applyPolicy, objectives)"
// +kubebuilder:resource:shortName=dpa,categories=autoscaling
// +kubebuilder:printcolumn:name="Apply Mode",type=string,JSONPath=`.spec.policy.applyMode`
// +kubebuilder:printcolumn:name="Active",type=string,JSONPath=`.status.conditions[?(@.type=='Active')].status`
// +kubebuilder:printcolumn:name="In Error",type=string,JSONPath=`.status.conditions[?(@.type=='Error')].status`
// +kubebuilder:printcolumn:name="Desired Replicas",type=integer,JSONPath=`.status.horizontal.target.desiredReplicas`
// +kubebuilder:printcolumn:name="Generated",type=date,JSONPath=`.status.horizontal.target.generatedAt`
// +kubebuilder:printcolumn:name="Able to Scale",type=string,JSONPath=`.status.conditions[?(@.type=='HorizontalAbleToScale')].status`
// +kubebuilder:printcolumn:name="Last Scale",type=date,JSONPath=`.status.horizontal.lastActions[-1:].time`
// +kubebuilder:printcolumn:name="Target CPU Req",type=string,JSONPath=`.status.vertical.target.podCPURequest`
// +kubebuilder:printcolumn:name="Target Memory Req",type=string,JSONPath=`.status.vertical.target.podMemoryRequest`
// +kubebuilder:printcolumn:name="Generated",type=date,JSONPath=`.status.vertical.target.generatedAt`
// +kubebuilder:printcolumn:name="Able to Apply",type=string,JSONPath=`.status.conditions[?(@.type=='VerticalAbleToApply')].status`
// +kubebuilder:printcolumn:name="Last Trigger",type=date,JSONPath=`.status.vertical.lastAction.time`
type DatadogPodAutoscaler struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DatadogPodAutoscalerSpec            `json:"spec,omitempty"`
	Status v1alpha2.DatadogPodAutoscalerStatus `json:"status,omitempty"`
}

// DatadogPodAutoscalerList is a list of v1alpha1 DPAs.
//
// +kubebuilder:object:root=true
type DatadogPodAutoscalerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DatadogPodAutoscaler `json:"items"`
}

// DatadogPodAutoscalerSpec is the v1alpha1 desired autoscaling of a workload.
type DatadogPodAutoscalerSpec struct {
	// TargetRef is the workload to scale.
	// +kubebuilder:validation:Required
	TargetRef v1alpha2.CrossVersionObjectReference `json:"targetRef"`

	// Owner is Local (edited in the cluster) or Remote (managed by an external source).
	// +optional
	// +kubebuilder:default=Local
	Owner v1alpha2.DatadogPodAutoscalerOwner `json:"owner,omitempty"`

	// RemoteVersion is the version of a Remote spec.
	// +optional
	RemoteVersion *uint64 `json:"remoteVersion,omitempty"`

	// Policy says which recommendations are applied, and how. The apiserver does not keep it
	// (v1alpha2 has applyPolicy instead). Unlike the Datadog CRD, no default is declared for it
	// or its applyMode: the default would be dropped with the field anyway, and it would show
	// in managedFields as if the user had written a policy.
	// +optional
	Policy *DatadogPodAutoscalerPolicy `json:"policy,omitempty"`

	// Targets are the objectives (v1alpha2's `objectives`). None means the pods' CPU at 80 %
	// of their requests.
	// +optional
	// +listType=atomic
	Targets []v1alpha2.DatadogPodAutoscalerObjective `json:"targets,omitempty"`

	// Constraints bound what the autoscaler may do.
	// +optional
	Constraints *v1alpha2.DatadogPodAutoscalerConstraints `json:"constraints,omitempty"`
}

// DatadogPodAutoscalerApplyMode is All, Manual or None.
// +kubebuilder:validation:Enum=All;Manual;None
type DatadogPodAutoscalerApplyMode string

// Apply modes of v1alpha1.
const (
	// ApplyModeAll applies every recommendation (v1alpha2's Apply).
	ApplyModeAll DatadogPodAutoscalerApplyMode = "All"
	// ApplyModeManual applies only recommendations validated by hand in the Datadog app; read
	// as v1alpha2's Preview.
	ApplyModeManual DatadogPodAutoscalerApplyMode = "Manual"
	// ApplyModeNone applies nothing (v1alpha2's Preview).
	ApplyModeNone DatadogPodAutoscalerApplyMode = "None"
)

// DatadogPodAutoscalerPolicy is v1alpha1's applyPolicy.
type DatadogPodAutoscalerPolicy struct {
	// ApplyMode: All applies every recommendation; Manual and None apply none.
	// +optional
	ApplyMode DatadogPodAutoscalerApplyMode `json:"applyMode,omitempty"`
	// Update configures vertical updates.
	// +optional
	Update *v1alpha2.DatadogPodAutoscalerUpdatePolicy `json:"update,omitempty"`
	// Upscale configures horizontal scale-up (v1alpha2's scaleUp).
	// +optional
	Upscale *v1alpha2.DatadogPodAutoscalerScalingPolicy `json:"upscale,omitempty"`
	// Downscale configures horizontal scale-down (v1alpha2's scaleDown).
	// +optional
	Downscale *v1alpha2.DatadogPodAutoscalerScalingPolicy `json:"downscale,omitempty"`
}
