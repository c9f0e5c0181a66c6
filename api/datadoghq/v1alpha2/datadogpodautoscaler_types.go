package v1alpha2

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DatadogPodAutoscaler scales one workload horizontally (replicas) and vertically (container
// resources) toward its objectives.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dpa,categories=autoscaling
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.targetRef.kind`,priority=1
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.applyPolicy.mode`
// +kubebuilder:printcolumn:name="Desired Replicas",type=integer,JSONPath=`.status.horizontal.target.desiredReplicas`
// +kubebuilder:printcolumn:name="Current Replicas",type=integer,JSONPath=`.status.currentReplicas`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DatadogPodAutoscaler struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DatadogPodAutoscalerSpec   `json:"spec,omitempty"`
	Status DatadogPodAutoscalerStatus `json:"status,omitempty"`
}

// DatadogPodAutoscalerList is a list of DPAs.
//
// +kubebuilder:object:root=true
type DatadogPodAutoscalerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DatadogPodAutoscaler `json:"items"`
}

// DatadogPodAutoscalerOwner says who owns the DPA's spec.
// +kubebuilder:validation:Enum=Local;Remote
type DatadogPodAutoscalerOwner string

// Owners.
const (
	DatadogPodAutoscalerLocalOwner  DatadogPodAutoscalerOwner = "Local"
	DatadogPodAutoscalerRemoteOwner DatadogPodAutoscalerOwner = "Remote"
)

// DatadogPodAutoscalerSpec is the desired autoscaling of a workload.
type DatadogPodAutoscalerSpec struct {
	// TargetRef is the workload to scale: any kind with a /scale subresource; apps/v1
	// Deployments and StatefulSets are also scaled vertically.
	// +kubebuilder:validation:Required
	TargetRef CrossVersionObjectReference `json:"targetRef"`

	// Owner is Local (edited in the cluster) or Remote (managed by an external source).
	// +optional
	// +kubebuilder:default=Local
	Owner DatadogPodAutoscalerOwner `json:"owner,omitempty"`

	// RemoteVersion is the version of a Remote spec.
	// +optional
	RemoteVersion *uint64 `json:"remoteVersion,omitempty"`

	// ApplyPolicy says how recommendations are applied.
	// +optional
	ApplyPolicy *DatadogPodAutoscalerApplyPolicy `json:"applyPolicy,omitempty"`

	// Objectives are the targets the autoscaler drives toward; at least one.
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Objectives []DatadogPodAutoscalerObjective `json:"objectives"`

	// Fallback configures local scaling when remote recommendations go stale.
	// +optional
	Fallback *DatadogFallbackPolicy `json:"fallback,omitempty"`

	// Constraints bound what the autoscaler may do.
	// +optional
	Constraints *DatadogPodAutoscalerConstraints `json:"constraints,omitempty"`

	// Options tune recommendations.
	// +optional
	Options *DatadogPodAutoscalerOptions `json:"options,omitempty"`
}

// CrossVersionObjectReference names the target workload.
type CrossVersionObjectReference struct {
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
}

// DatadogPodAutoscalerApplyMode is Apply or Preview.
// +kubebuilder:validation:Enum=Apply;Preview
type DatadogPodAutoscalerApplyMode string

// Apply modes.
const (
	DatadogPodAutoscalerApplyModeApply   DatadogPodAutoscalerApplyMode = "Apply"
	DatadogPodAutoscalerApplyModePreview DatadogPodAutoscalerApplyMode = "Preview"
)

// DatadogPodAutoscalerApplyPolicy says how recommendations are applied.
type DatadogPodAutoscalerApplyPolicy struct {
	// Mode Apply acts on recommendations; Preview only records them in status.
	// +optional
	// +kubebuilder:default=Apply
	Mode DatadogPodAutoscalerApplyMode `json:"mode,omitempty"`
	// Update configures vertical updates (rollouts).
	// +optional
	Update *DatadogPodAutoscalerUpdatePolicy `json:"update,omitempty"`
	// ScaleUp configures horizontal scale-up.
	// +optional
	ScaleUp *DatadogPodAutoscalerScalingPolicy `json:"scaleUp,omitempty"`
	// ScaleDown configures horizontal scale-down.
	// +optional
	ScaleDown *DatadogPodAutoscalerScalingPolicy `json:"scaleDown,omitempty"`
}

// DatadogPodAutoscalerUpdateStrategy is Auto or Disabled.
// +kubebuilder:validation:Enum=Auto;Disabled
type DatadogPodAutoscalerUpdateStrategy string

// Update strategies.
const (
	DatadogPodAutoscalerAutoUpdateStrategy     DatadogPodAutoscalerUpdateStrategy = "Auto"
	DatadogPodAutoscalerDisabledUpdateStrategy DatadogPodAutoscalerUpdateStrategy = "Disabled"
)

// DatadogPodAutoscalerUpdatePolicy configures vertical updates.
type DatadogPodAutoscalerUpdatePolicy struct {
	// +optional
	// +kubebuilder:default=Auto
	Strategy DatadogPodAutoscalerUpdateStrategy `json:"strategy,omitempty"`
}

// DatadogPodAutoscalerScalingStrategySelect is Max, Min or Disabled.
// +kubebuilder:validation:Enum=Max;Min;Disabled
type DatadogPodAutoscalerScalingStrategySelect string

// Scaling strategies.
const (
	DatadogPodAutoscalerMaxChangeStrategySelect DatadogPodAutoscalerScalingStrategySelect = "Max"
	DatadogPodAutoscalerMinChangeStrategySelect DatadogPodAutoscalerScalingStrategySelect = "Min"
	DatadogPodAutoscalerDisabledStrategySelect  DatadogPodAutoscalerScalingStrategySelect = "Disabled"
)

// DatadogPodAutoscalerScalingPolicy limits horizontal changes in one direction.
type DatadogPodAutoscalerScalingPolicy struct {
	// Strategy picks the rule allowing the largest (Max) or smallest (Min) change, or none.
	// +optional
	Strategy *DatadogPodAutoscalerScalingStrategySelect `json:"strategy,omitempty"`
	// Rules limit the change per period.
	// +optional
	// +listType=atomic
	Rules []DatadogPodAutoscalerScalingRule `json:"rules,omitempty"`
	// StabilizationWindowSeconds is how far back recommendations are considered.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1800
	StabilizationWindowSeconds int32 `json:"stabilizationWindowSeconds,omitempty"`
}

// DatadogPodAutoscalerScalingRuleType is Pods or Percent.
// +kubebuilder:validation:Enum=Pods;Percent
type DatadogPodAutoscalerScalingRuleType string

// Rule types.
const (
	DatadogPodAutoscalerPodsScalingRuleType    DatadogPodAutoscalerScalingRuleType = "Pods"
	DatadogPodAutoscalerPercentScalingRuleType DatadogPodAutoscalerScalingRuleType = "Percent"
)

// DatadogPodAutoscalerScalingRule allows a change of Value pods or percent per period.
type DatadogPodAutoscalerScalingRule struct {
	Type DatadogPodAutoscalerScalingRuleType `json:"type"`
	// +kubebuilder:validation:Minimum=0
	Value int32 `json:"value"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1800
	PeriodSeconds int32 `json:"periodSeconds"`
}

// DatadogPodAutoscalerObjectiveType is PodResource or ContainerResource.
// +kubebuilder:validation:Enum=PodResource;ContainerResource
type DatadogPodAutoscalerObjectiveType string

// Objective types.
const (
	DatadogPodAutoscalerPodResourceObjectiveType       DatadogPodAutoscalerObjectiveType = "PodResource"
	DatadogPodAutoscalerContainerResourceObjectiveType DatadogPodAutoscalerObjectiveType = "ContainerResource"
)

// DatadogPodAutoscalerObjective is one target: a pod-level or a container-level resource.
// +kubebuilder:validation:XValidation:rule="self.type != 'PodResource' || has(self.podResource)",message="podResource is required when type is PodResource"
// +kubebuilder:validation:XValidation:rule="self.type != 'ContainerResource' || has(self.containerResource)",message="containerResource is required when type is ContainerResource"
type DatadogPodAutoscalerObjective struct {
	Type DatadogPodAutoscalerObjectiveType `json:"type"`
	// +optional
	PodResource *DatadogPodAutoscalerPodResourceObjective `json:"podResource,omitempty"`
	// +optional
	ContainerResource *DatadogPodAutoscalerContainerResourceObjective `json:"containerResource,omitempty"`
}

// DatadogPodAutoscalerPodResourceObjective targets a resource summed over the pod.
type DatadogPodAutoscalerPodResourceObjective struct {
	// +kubebuilder:validation:Enum=cpu;memory
	Name  corev1.ResourceName                `json:"name"`
	Value DatadogPodAutoscalerObjectiveValue `json:"value"`
}

// DatadogPodAutoscalerContainerResourceObjective targets a resource of one container.
type DatadogPodAutoscalerContainerResourceObjective struct {
	// +kubebuilder:validation:Enum=cpu;memory
	Name corev1.ResourceName `json:"name"`
	// +kubebuilder:validation:MinLength=1
	Container string                             `json:"container"`
	Value     DatadogPodAutoscalerObjectiveValue `json:"value"`
}

// DatadogPodAutoscalerObjectiveValueType is Utilization or AbsoluteValue.
// +kubebuilder:validation:Enum=Utilization;AbsoluteValue
type DatadogPodAutoscalerObjectiveValueType string

// Objective value types.
const (
	DatadogPodAutoscalerUtilizationObjectiveValueType   DatadogPodAutoscalerObjectiveValueType = "Utilization"
	DatadogPodAutoscalerAbsoluteValueObjectiveValueType DatadogPodAutoscalerObjectiveValueType = "AbsoluteValue"
)

// DatadogPodAutoscalerObjectiveValue is a utilization percentage or an absolute quantity.
// +kubebuilder:validation:XValidation:rule="self.type != 'Utilization' || has(self.utilization)",message="utilization is required when type is Utilization"
// +kubebuilder:validation:XValidation:rule="self.type != 'AbsoluteValue' || has(self.absoluteValue)",message="absoluteValue is required when type is AbsoluteValue"
type DatadogPodAutoscalerObjectiveValue struct {
	Type DatadogPodAutoscalerObjectiveValueType `json:"type"`
	// Utilization is a percentage of the requests.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Utilization *int32 `json:"utilization,omitempty"`
	// +optional
	AbsoluteValue *resource.Quantity `json:"absoluteValue,omitempty"`
}

// DatadogPodAutoscalerFallbackDirection is ScaleUp, ScaleDown or All.
// +kubebuilder:validation:Enum=ScaleUp;ScaleDown;All
type DatadogPodAutoscalerFallbackDirection string

// Fallback directions.
const (
	DatadogPodAutoscalerFallbackDirectionScaleUp   DatadogPodAutoscalerFallbackDirection = "ScaleUp"
	DatadogPodAutoscalerFallbackDirectionScaleDown DatadogPodAutoscalerFallbackDirection = "ScaleDown"
	DatadogPodAutoscalerFallbackDirectionAll       DatadogPodAutoscalerFallbackDirection = "All"
)

// DatadogFallbackPolicy configures fallbacks.
type DatadogFallbackPolicy struct {
	// +optional
	Horizontal DatadogPodAutoscalerHorizontalFallbackPolicy `json:"horizontal,omitempty"`
}

// DatadogPodAutoscalerHorizontalFallbackPolicy switches to local horizontal recommendations.
type DatadogPodAutoscalerHorizontalFallbackPolicy struct {
	// +optional
	// +kubebuilder:default=true
	Enabled bool `json:"enabled,omitempty"`
	// +optional
	// +kubebuilder:default=ScaleUp
	Direction DatadogPodAutoscalerFallbackDirection `json:"direction,omitempty"`
	// +optional
	Triggers HorizontalFallbackTriggers `json:"triggers,omitempty"`
	// Objectives used while falling back; the spec's objectives when empty.
	// +optional
	// +listType=atomic
	Objectives []DatadogPodAutoscalerObjective `json:"objectives,omitempty"`
}

// HorizontalFallbackTriggers says when to fall back.
type HorizontalFallbackTriggers struct {
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=3600
	StaleRecommendationThresholdSeconds int32 `json:"staleRecommendationThresholdSeconds,omitempty"`
}

// DatadogPodAutoscalerConstraints bound the autoscaler.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas"
type DatadogPodAutoscalerConstraints struct {
	// +optional
	// +kubebuilder:validation:Minimum=1
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
	// +optional
	// +listType=atomic
	Containers []DatadogPodAutoscalerContainerConstraints `json:"containers,omitempty"`
}

// DatadogPodAutoscalerContainerControlledValues is RequestsAndLimits or RequestsOnly.
// +kubebuilder:validation:Enum=RequestsAndLimits;RequestsOnly
type DatadogPodAutoscalerContainerControlledValues string

// Controlled values.
const (
	DatadogPodAutoscalerContainerControlledValuesRequestsAndLimits DatadogPodAutoscalerContainerControlledValues = "RequestsAndLimits"
	DatadogPodAutoscalerContainerControlledValuesRequestsOnly      DatadogPodAutoscalerContainerControlledValues = "RequestsOnly"
)

// DatadogPodAutoscalerContainerConstraints bound one container ("*" for all).
type DatadogPodAutoscalerContainerConstraints struct {
	// Name is a container name or "*".
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// +optional
	MinAllowed corev1.ResourceList `json:"minAllowed,omitempty"`
	// +optional
	MaxAllowed corev1.ResourceList `json:"maxAllowed,omitempty"`
	// +optional
	// +listType=set
	ControlledResources []corev1.ResourceName `json:"controlledResources,omitempty"`
	// +optional
	ControlledValues *DatadogPodAutoscalerContainerControlledValues `json:"controlledValues,omitempty"`
}

// DatadogPodAutoscalerOptions tune recommendations.
type DatadogPodAutoscalerOptions struct {
	// +optional
	OutOfMemory *DatadogPodAutoscalerOutOfMemoryOptions `json:"outOfMemory,omitempty"`
}

// DatadogPodAutoscalerOutOfMemoryOptions configure the reaction to OOM kills.
type DatadogPodAutoscalerOutOfMemoryOptions struct {
	// BumpUpRatio multiplies memory after an OOM kill, e.g. "1.2".
	// +optional
	BumpUpRatio *resource.Quantity `json:"bumpUpRatio,omitempty"`
}

// DatadogPodAutoscalerStatus is what the autoscaler observed and decided.
type DatadogPodAutoscalerStatus struct {
	// +optional
	Vertical *DatadogPodAutoscalerVerticalStatus `json:"vertical,omitempty"`
	// +optional
	Horizontal *DatadogPodAutoscalerHorizontalStatus `json:"horizontal,omitempty"`
	// +optional
	CurrentReplicas *int32 `json:"currentReplicas,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DatadogPodAutoscalerValueSource is where a recommendation came from.
// +kubebuilder:validation:Enum=Autoscaling;Manual;Local
type DatadogPodAutoscalerValueSource string

// Value sources.
const (
	DatadogPodAutoscalerAutoscalingValueSource DatadogPodAutoscalerValueSource = "Autoscaling"
	DatadogPodAutoscalerManualValueSource      DatadogPodAutoscalerValueSource = "Manual"
	DatadogPodAutoscalerLocalValueSource       DatadogPodAutoscalerValueSource = "Local"
)

// DatadogPodAutoscalerVerticalStatus is the vertical recommendation and last action.
type DatadogPodAutoscalerVerticalStatus struct {
	// +optional
	Target *DatadogPodAutoscalerVerticalTargetStatus `json:"target,omitempty"`
	// +optional
	LastAction *DatadogPodAutoscalerVerticalAction `json:"lastAction,omitempty"`
}

// DatadogPodAutoscalerVerticalTargetStatus is one vertical recommendation.
type DatadogPodAutoscalerVerticalTargetStatus struct {
	Source      DatadogPodAutoscalerValueSource `json:"source"`
	GeneratedAt metav1.Time                     `json:"generatedAt,omitempty"`
	// Version identifies the recommendation (the rec-id annotation).
	Version string `json:"version"`
	// +listType=map
	// +listMapKey=name
	DesiredResources []DatadogPodAutoscalerContainerResources `json:"desiredResources"`
}

// DatadogPodAutoscalerContainerResources are one container's recommended resources.
type DatadogPodAutoscalerContainerResources struct {
	Name string `json:"name"`
	// +optional
	Requests corev1.ResourceList `json:"requests,omitempty"`
	// +optional
	Limits corev1.ResourceList `json:"limits,omitempty"`
}

// DatadogPodAutoscalerVerticalAction is a vertical rollout.
type DatadogPodAutoscalerVerticalAction struct {
	Time    metav1.Time `json:"time"`
	Version string      `json:"version"`
	// Type is the rollout kind, e.g. RolloutTriggered.
	Type string `json:"type"`
}

// DatadogPodAutoscalerHorizontalStatus is the horizontal recommendation and recent actions.
type DatadogPodAutoscalerHorizontalStatus struct {
	// +optional
	Target *DatadogPodAutoscalerHorizontalTargetStatus `json:"target,omitempty"`
	// +optional
	// +listType=atomic
	LastActions []DatadogPodAutoscalerHorizontalAction `json:"lastActions,omitempty"`
}

// DatadogPodAutoscalerHorizontalTargetStatus is one horizontal recommendation.
type DatadogPodAutoscalerHorizontalTargetStatus struct {
	Source          DatadogPodAutoscalerValueSource `json:"source"`
	GeneratedAt     metav1.Time                     `json:"generatedAt,omitempty"`
	DesiredReplicas int32                           `json:"desiredReplicas"`
}

// DatadogPodAutoscalerHorizontalAction is one scaling action.
type DatadogPodAutoscalerHorizontalAction struct {
	Time                metav1.Time `json:"time"`
	FromReplicas        int32       `json:"replicas"`
	RecommendedReplicas *int32      `json:"recommendedReplicas,omitempty"`
	ToReplicas          int32       `json:"appliedReplicas"`
	// +optional
	LimitedReason *string `json:"limitedReason,omitempty"`
}
