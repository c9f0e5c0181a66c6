package v1alpha2

import "k8s.io/apimachinery/pkg/runtime/schema"

// Group and version of the autoscaling API.
const (
	GroupName = "datadoghq.com"
	Version   = "v1alpha2"
)

// Labels and annotations of the public contract.
const (
	// ProfileLabel opts a Deployment, StatefulSet or Namespace into the
	// DatadogPodAutoscalerClusterProfile named by its value.
	ProfileLabel = "autoscaling.datadoghq.com/profile"
	// ProfileExcluded as ProfileLabel's value opts a workload out of its namespace's profile.
	ProfileExcluded = "excluded"
	// GeneratedFromProfileLabel marks a DPA generated from the cluster profile named by its
	// value; lazyscale owns such DPAs (it updates and deletes them). It is ProfileLabel, as the
	// Datadog Cluster Agent marks the DPAs it generates.
	GeneratedFromProfileLabel = ProfileLabel
	// ProfileTemplateHashAnnotation on a generated DPA is the hash of the profile's template
	// (and of its forwarded preview annotation) it was built from, as the Cluster Agent names it.
	ProfileTemplateHashAnnotation = "autoscaling.datadoghq.com/profile-hash"
	// LegacyGeneratedFromProfileLabel marked generated DPAs before lazyscale wrote the Cluster
	// Agent's label; such DPAs are still recognised as generated, and relabelled or replaced.
	LegacyGeneratedFromProfileLabel = "autoscaling.datadoghq.com/generated-from-profile"
	// LegacyProfileTemplateHashAnnotation is the hash annotation lazyscale wrote before.
	LegacyProfileTemplateHashAnnotation = "autoscaling.datadoghq.com/profile-template-hash"
	// PreviewAnnotation on a cluster profile (JSON, e.g. {"burstable": true}) enables preview
	// features; the profile forwards it to the DPAs it generates, as the Cluster Agent does.
	PreviewAnnotation = "autoscaling.datadoghq.com/preview"
	// AnnotationPrefix is the prefix of every annotation lazyscale reads or writes on pods.
	AnnotationPrefix = "autoscaling.datadoghq.com/"
	// AutoscalerIDAnnotation is written on pods: namespace/name of the DPA that owns them.
	AutoscalerIDAnnotation = "autoscaling.datadoghq.com/autoscaler-id"
	// RecommendationIDAnnotation is the recommendation version applied to a pod or template.
	RecommendationIDAnnotation = "autoscaling.datadoghq.com/rec-id"
	// OriginalResourcesAnnotation is written on pods whose resources lazyscale changes (by the
	// webhook, or a resize): by container, each cpu and memory request and limit before the first
	// change, null when absent, e.g. {"app":{"requests":{"cpu":"100m","memory":null},...}}. The
	// Cluster Agent's key and format.
	OriginalResourcesAnnotation = "internal.autoscaling.datadoghq.com/original-resources"
	// RolloutAtAnnotation on a pod template triggers a vertical rollout.
	RolloutAtAnnotation = "autoscaling.datadoghq.com/rolloutAt"

	// CustomRecommenderAnnotation on a DPA names an external recommender:
	// {"endpoint": "https://...", "settings": {...}}.
	CustomRecommenderAnnotation = "autoscaling.datadoghq.com/custom-recommender"
	// ForceResourcesAnnotation on a DPA pins container resources:
	// [{"name": "<container>", "requests": {...}, "limits": {...}}], still within constraints.
	ForceResourcesAnnotation = "autoscaling.datadoghq.com/force-resources"
	// ForceReplicasAnnotation on a DPA pins the replica count: a break-glass override reached
	// in one step, outside [min, max], without rules or windows (as in the Cluster Agent).
	ForceReplicasAnnotation = "autoscaling.datadoghq.com/force-replicas"
	// PauseAnnotation "true" on a DPA stops every action lazyscale takes for it.
	PauseAnnotation = "autoscaling.datadoghq.com/pause"
)

// Condition types of a DPA's status.
const (
	ConditionActive                    = "Active"
	ConditionError                     = "Error"
	ConditionVerticalAbleToRecommend   = "VerticalAbleToRecommend"
	ConditionVerticalAbleToApply       = "VerticalAbleToApply"
	ConditionVerticalScalingLimited    = "VerticalScalingLimited"
	ConditionHorizontalAbleToRecommend = "HorizontalAbleToRecommend"
	ConditionHorizontalAbleToScale     = "HorizontalAbleToScale"
	ConditionHorizontalScalingLimited  = "HorizontalScalingLimited"
	// ConditionNotActedOn is lazyscale's own: True when the spec has fields of the Datadog API
	// that lazyscale accepts and keeps but does not act on; its message names them. Absent
	// when there is none.
	ConditionNotActedOn = "NotActedOn"
	// ConditionValid is a cluster profile's: its template is usable.
	ConditionValid = "Valid"
)

// SchemeGroupVersion is the group version of the DPA types.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// Resources of the API, for dynamic and metadata clients.
var (
	DatadogPodAutoscalersResource               = SchemeGroupVersion.WithResource("datadogpodautoscalers")
	DatadogPodAutoscalerClusterProfilesResource = SchemeGroupVersion.WithResource("datadogpodautoscalerclusterprofiles")
)

// ProfileLabelledResource is a kind ProfileLabel may be set on. It is not an API type.
//
// +kubebuilder:object:generate=false
type ProfileLabelledResource struct {
	Kind     string
	Resource schema.GroupVersionResource
}

// Kinds ProfileLabel opts in.
var (
	DeploymentsResource  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	StatefulSetsResource = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	NamespacesResource   = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	// ProfileWorkloadResources are the workload kinds a profile generates DPAs for, by kind.
	ProfileWorkloadResources = map[string]schema.GroupVersionResource{"Deployment": DeploymentsResource, "StatefulSet": StatefulSetsResource}
	// ProfileLabelledResources are every kind ProfileLabel is read on: the workloads and their
	// namespaces.
	ProfileLabelledResources = []ProfileLabelledResource{
		{"Deployment", DeploymentsResource}, {"StatefulSet", StatefulSetsResource}, {"Namespace", NamespacesResource},
	}
)
