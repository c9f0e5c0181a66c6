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
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="Apply Mode",type=string,JSONPath=`.spec.applyPolicy.mode`
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
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`,priority=1
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.targetRef.kind`,priority=1
// +kubebuilder:printcolumn:name="Current Replicas",type=integer,JSONPath=`.status.currentReplicas`,priority=1
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
	// +kubebuilder:default={}
	ApplyPolicy *DatadogPodAutoscalerApplyPolicy `json:"applyPolicy,omitempty"`

	// Objectives are the targets the autoscaler drives toward. When none is set, lazyscale
	// keeps the pods' CPU at 80 % of their requests (DefaultObjective).
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Objectives []DatadogPodAutoscalerObjective `json:"objectives,omitempty"`

	// Fallback configures local scaling when remote recommendations go stale.
	// +optional
	// +kubebuilder:default={}
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
	Kind string `json:"kind"`
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
	Mode DatadogPodAutoscalerApplyMode `json:"mode"`
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

// DatadogPodAutoscalerUpdateStrategy is Auto, TriggerRollout or Disabled.
// +kubebuilder:validation:Enum=Auto;Disabled;TriggerRollout
type DatadogPodAutoscalerUpdateStrategy string

// Update strategies.
const (
	// Auto lets the autoscaler pick how pods get a new recommendation: resized in place, or a
	// rollout when a resize cannot be done in place.
	DatadogPodAutoscalerAutoUpdateStrategy DatadogPodAutoscalerUpdateStrategy = "Auto"
	// Disabled: the workload is never updated, and new pods are not patched.
	DatadogPodAutoscalerDisabledUpdateStrategy DatadogPodAutoscalerUpdateStrategy = "Disabled"
	// TriggerRollout always rolls the workload out.
	DatadogPodAutoscalerTriggerRolloutUpdateStrategy DatadogPodAutoscalerUpdateStrategy = "TriggerRollout"
)

// DatadogPodAutoscalerUpdatePolicy configures vertical updates.
type DatadogPodAutoscalerUpdatePolicy struct {
	// +optional
	Strategy DatadogPodAutoscalerUpdateStrategy `json:"strategy,omitempty"`
	// ResizePendingPeriod is how long, in seconds, an in-place resize the kubelet reports as
	// Deferred is waited for (default 600) before lazyscale rolls the workload out instead.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	ResizePendingPeriod int32 `json:"resizePendingPeriod,omitempty"`
	// RolloutFallbackDelay is how long, in seconds, blocked evictions are waited for before a
	// full rollout. Accepted and kept; lazyscale does not evict (it rolls out at once).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	RolloutFallbackDelay int32 `json:"rolloutFallbackDelay,omitempty"`
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
	// +kubebuilder:validation:Maximum=3600
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
	// +kubebuilder:validation:Maximum=3600
	PeriodSeconds int32 `json:"periodSeconds"`
}

// DatadogPodAutoscalerObjectiveType is PodResource, ContainerResource or CustomQuery.
// +kubebuilder:validation:Enum=PodResource;ContainerResource;CustomQuery
type DatadogPodAutoscalerObjectiveType string

// Objective types.
const (
	DatadogPodAutoscalerPodResourceObjectiveType       DatadogPodAutoscalerObjectiveType = "PodResource"
	DatadogPodAutoscalerContainerResourceObjectiveType DatadogPodAutoscalerObjectiveType = "ContainerResource"
	// CustomQuery is a metrics query evaluated by Datadog's backend. lazyscale keeps it and
	// passes it to an external recommender; its local recommender cannot serve it.
	DatadogPodAutoscalerCustomQueryObjectiveType DatadogPodAutoscalerObjectiveType = "CustomQuery"
)

// DatadogPodAutoscalerObjective is one target: a pod-level or a container-level resource, or
// a custom query. The member matching Type must be set; the controller reports it when not.
type DatadogPodAutoscalerObjective struct {
	Type DatadogPodAutoscalerObjectiveType `json:"type"`
	// +optional
	PodResource *DatadogPodAutoscalerPodResourceObjective `json:"podResource,omitempty"`
	// +optional
	ContainerResource *DatadogPodAutoscalerContainerResourceObjective `json:"containerResource,omitempty"`
	// +optional
	CustomQuery *DatadogPodAutoscalerCustomQueryObjective `json:"customQuery,omitempty"`
}

// DatadogPodAutoscalerCustomQueryObjective keeps a query's value at a target.
type DatadogPodAutoscalerCustomQueryObjective struct {
	// Request is the query.
	Request DatadogPodAutoscalerTimeseriesFormulaRequest `json:"request"`
	// Value is the target.
	Value DatadogPodAutoscalerObjectiveValue `json:"value"`
	// Window is the span the query is evaluated over, e.g. "5m".
	Window metav1.Duration `json:"window"`
}

// DatadogPodAutoscalerTimeseriesFormulaRequest is one or more queries and a formula over them.
type DatadogPodAutoscalerTimeseriesFormulaRequest struct {
	// Formula combines the queries by name, e.g. "a / b".
	// +optional
	Formula string `json:"formula,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Queries []DatadogPodAutoscalerTimeseriesQuery `json:"queries"`
}

// DatadogPodAutoscalerMetricsDataSource is Metrics or ApmMetrics.
// +kubebuilder:validation:Enum=Metrics;ApmMetrics
type DatadogPodAutoscalerMetricsDataSource string

// Query sources.
const (
	DatadogPodAutoscalerMetricsDataSourceMetrics    DatadogPodAutoscalerMetricsDataSource = "Metrics"
	DatadogPodAutoscalerMetricsDataSourceApmMetrics DatadogPodAutoscalerMetricsDataSource = "ApmMetrics"
)

// DatadogPodAutoscalerTimeseriesQuery is one query: a metrics query or an APM one.
type DatadogPodAutoscalerTimeseriesQuery struct {
	// Name is what the formula calls the query.
	// +optional
	Name   string                                `json:"name"`
	Source DatadogPodAutoscalerMetricsDataSource `json:"source"`
	// +optional
	Metrics *DatadogPodAutoscalerMetricsTimeseriesQuery `json:"metrics,omitempty"`
	// +optional
	ApmMetrics *DatadogPodAutoscalerApmMetricsTimeseriesQuery `json:"apmMetrics,omitempty"`
}

// DatadogPodAutoscalerMetricsTimeseriesQuery is a metrics query string.
type DatadogPodAutoscalerMetricsTimeseriesQuery struct {
	// +kubebuilder:validation:MinLength=1
	Query string `json:"query"`
}

// DatadogPodAutoscalerApmMetricsStat is the statistic of an APM query.
// +kubebuilder:validation:Enum=error_rate;errors;errors_per_second;hits;hits_per_second;apdex;latency_avg;latency_max;latency_p50;latency_p75;latency_p90;latency_p95;latency_p99;latency_p999;latency_distribution;total_time
type DatadogPodAutoscalerApmMetricsStat string

// DatadogPodAutoscalerApmMetricsTimeseriesQuery is an APM query.
type DatadogPodAutoscalerApmMetricsTimeseriesQuery struct {
	Stat DatadogPodAutoscalerApmMetricsStat `json:"stat"`
	// +optional
	Service string `json:"service,omitempty"`
	// +optional
	ResourceName string `json:"resourceName,omitempty"`
	// +optional
	ResourceHash string `json:"resourceHash,omitempty"`
	// +optional
	OperationName string `json:"operationName,omitempty"`
	// +optional
	GroupBy []string `json:"groupBy,omitempty"`
	// +optional
	QueryFilter string `json:"queryFilter,omitempty"`
	// +optional
	SpanKind string `json:"spanKind,omitempty"`
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
	Name      corev1.ResourceName                `json:"name"`
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

// DatadogPodAutoscalerObjectiveValue is a utilization percentage or an absolute quantity; the
// member matching Type must be set (the controller reports it when not).
type DatadogPodAutoscalerObjectiveValue struct {
	Type DatadogPodAutoscalerObjectiveValueType `json:"type"`
	// Utilization is a percentage of the requests.
	// +optional
	// +kubebuilder:validation:Minimum=0
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
	// +kubebuilder:default={}
	Horizontal DatadogPodAutoscalerHorizontalFallbackPolicy `json:"horizontal,omitempty"`
}

// DatadogPodAutoscalerHorizontalFallbackPolicy switches to local horizontal recommendations.
type DatadogPodAutoscalerHorizontalFallbackPolicy struct {
	// Enabled is written even when false: a false that an omitempty dropped would come back
	// as the default, true.
	// +optional
	// +kubebuilder:default=true
	Enabled bool `json:"enabled"`
	// +optional
	// +kubebuilder:default=ScaleUp
	Direction DatadogPodAutoscalerFallbackDirection `json:"direction,omitempty"`
	// +optional
	// +kubebuilder:default={}
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

// DatadogPodAutoscalerConstraints bound the autoscaler. minReplicas above maxReplicas is
// reported by the controller, not refused by the schema.
type DatadogPodAutoscalerConstraints struct {
	// +optional
	// +kubebuilder:validation:Minimum=1
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
	// +optional
	Containers []DatadogPodAutoscalerContainerConstraints `json:"containers,omitempty"`
}

// DatadogPodAutoscalerContainerControlledValues is RequestsAndLimits, RequestsOnly or
// CPURequestsRemoveLimitsMemoryRequestsAndLimits.
// +kubebuilder:validation:Enum=RequestsAndLimits;RequestsOnly;CPURequestsRemoveLimitsMemoryRequestsAndLimits
type DatadogPodAutoscalerContainerControlledValues string

// Controlled values.
const (
	DatadogPodAutoscalerContainerControlledValuesRequestsAndLimits DatadogPodAutoscalerContainerControlledValues = "RequestsAndLimits"
	DatadogPodAutoscalerContainerControlledValuesRequestsOnly      DatadogPodAutoscalerContainerControlledValues = "RequestsOnly"
	// CPU: requests only, and the CPU limit removed; memory: requests and limits.
	DatadogPodAutoscalerContainerControlledValuesCPURequestsRemoveLimitsMemoryRequestsAndLimits DatadogPodAutoscalerContainerControlledValues = "CPURequestsRemoveLimitsMemoryRequestsAndLimits"
)

// DatadogPodAutoscalerContainerConstraints bound one container ("*" for all).
type DatadogPodAutoscalerContainerConstraints struct {
	// Name is a container name or "*".
	Name string `json:"name"`
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// Requests is the older place of MinAllowed and MaxAllowed, read when those are unset.
	// +optional
	Requests *DatadogPodAutoscalerContainerResourceConstraints `json:"requests,omitempty"`
	// +optional
	MinAllowed corev1.ResourceList `json:"minAllowed,omitempty"`
	// +optional
	MaxAllowed corev1.ResourceList `json:"maxAllowed,omitempty"`
	// +optional
	ControlledResources []corev1.ResourceName `json:"controlledResources,omitempty"`
	// +optional
	ControlledValues *DatadogPodAutoscalerContainerControlledValues `json:"controlledValues,omitempty"`
}

// DatadogPodAutoscalerContainerResourceConstraints are the older form of the request bounds.
type DatadogPodAutoscalerContainerResourceConstraints struct {
	// +optional
	MinAllowed corev1.ResourceList `json:"minAllowed,omitempty"`
	// +optional
	MaxAllowed corev1.ResourceList `json:"maxAllowed,omitempty"`
}

// DatadogPodAutoscalerOptions tune recommendations.
type DatadogPodAutoscalerOptions struct {
	// +optional
	OutOfMemory *DatadogPodAutoscalerOutOfMemoryOptions `json:"outOfMemory,omitempty"`
	// Burstable removes the CPU limits of the containers the autoscaler sets resources for,
	// keeping their CPU requests (Burstable QoS: they may use idle CPU of the node). Unset: the
	// agent's autoscaling.workload.options.burstable (false by default), or the profile's
	// preview annotation {"burstable": true}.
	// +optional
	Burstable *bool `json:"burstable,omitempty"`
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
	// Options are the options in effect.
	// +optional
	Options *DatadogPodAutoscalerOptionsStatus `json:"options,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []DatadogPodAutoscalerCondition `json:"conditions,omitempty"`
}

// DatadogPodAutoscalerOptionsStatus are the options in effect.
type DatadogPodAutoscalerOptionsStatus struct {
	// +optional
	Burstable *bool `json:"burstable,omitempty"`
}

// DatadogPodAutoscalerCondition is one condition of a DPA. Unlike metav1.Condition it has no
// observedGeneration, and only type and status are required: the Cluster Agent writes it so.
type DatadogPodAutoscalerCondition struct {
	Type   string                 `json:"type"`
	Status metav1.ConditionStatus `json:"status"`
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
}

// DatadogPodAutoscalerValueSource is where a recommendation came from: Autoscaling (an
// external recommender), Manual, Local or External.
type DatadogPodAutoscalerValueSource string

// Value sources.
const (
	DatadogPodAutoscalerAutoscalingValueSource DatadogPodAutoscalerValueSource = "Autoscaling"
	DatadogPodAutoscalerManualValueSource      DatadogPodAutoscalerValueSource = "Manual"
	DatadogPodAutoscalerLocalValueSource       DatadogPodAutoscalerValueSource = "Local"
	DatadogPodAutoscalerExternalValueSource    DatadogPodAutoscalerValueSource = "External"
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
	// Scaled is how many of the target's pods carry the recommendation.
	// +optional
	Scaled *int32 `json:"scaled,omitempty"`
	// Evicted is how many pods were evicted for this recommendation (0: lazyscale rolls out).
	// +optional
	Evicted          *int32                                   `json:"evicted,omitempty"`
	DesiredResources []DatadogPodAutoscalerContainerResources `json:"desiredResources"`
	// PodCPURequest is the recommended CPU requests summed over the pod's containers.
	PodCPURequest resource.Quantity `json:"podCPURequest"`
	// PodMemoryRequest is the recommended memory requests summed over the pod's containers.
	PodMemoryRequest resource.Quantity `json:"podMemoryRequest"`
}

// DatadogPodAutoscalerContainerResources are one container's recommended resources.
type DatadogPodAutoscalerContainerResources struct {
	Name string `json:"name"`
	// +optional
	Requests corev1.ResourceList `json:"requests,omitempty"`
	// +optional
	Limits corev1.ResourceList `json:"limits,omitempty"`
	// Runtime holds values for the container's runtime, e.g. GOMEMLIMIT. Kept; not applied.
	// +optional
	Runtime *DatadogPodAutoscalerContainerRuntimeValues `json:"runtime,omitempty"`
}

// DatadogPodAutoscalerContainerRuntimeValues are runtime settings for a container.
type DatadogPodAutoscalerContainerRuntimeValues struct {
	// +optional
	Gomemlimit string `json:"gomemlimit,omitempty"`
}

// Vertical action types.
const (
	VerticalActionRolloutTriggered = "RolloutTriggered"
	VerticalActionResizeTriggered  = "ResizeTriggered"
	VerticalActionResizeCompleted  = "ResizeCompleted"
)

// DatadogPodAutoscalerVerticalAction is a vertical action: a rollout, or an in-place resize.
type DatadogPodAutoscalerVerticalAction struct {
	Time    metav1.Time `json:"time"`
	Version string      `json:"version"`
	// Type is RolloutTriggered, ResizeTriggered or ResizeCompleted.
	Type string `json:"type"`
}

// DatadogPodAutoscalerHorizontalStatus is the horizontal recommendation and recent actions.
type DatadogPodAutoscalerHorizontalStatus struct {
	// +optional
	Target *DatadogPodAutoscalerHorizontalTargetStatus `json:"target,omitempty"`
	// +optional
	LastActions []DatadogPodAutoscalerHorizontalAction `json:"lastActions,omitempty"`
	// LastRecommendations are the most recent recommendations. Kept; lazyscale keeps its
	// history in memory.
	// +optional
	LastRecommendations []DatadogPodAutoscalerHorizontalTargetStatus `json:"lastRecommendations,omitempty"`
}

// DatadogPodAutoscalerHorizontalTargetStatus is one horizontal recommendation.
type DatadogPodAutoscalerHorizontalTargetStatus struct {
	// +optional
	Source          DatadogPodAutoscalerValueSource `json:"source,omitempty"`
	GeneratedAt     metav1.Time                     `json:"generatedAt,omitempty"`
	DesiredReplicas int32                           `json:"desiredReplicas"`
}

// DatadogPodAutoscalerHorizontalAction is one scaling action.
type DatadogPodAutoscalerHorizontalAction struct {
	Time                metav1.Time `json:"time"`
	FromReplicas        int32       `json:"replicas"`
	RecommendedReplicas *int32      `json:"recommendedReplicas,omitempty"`
	ToReplicas          int32       `json:"toReplicas"`
	// +optional
	LimitedReason *string `json:"limitedReason,omitempty"`
}
