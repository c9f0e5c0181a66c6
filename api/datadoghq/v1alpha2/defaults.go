package v1alpha2

import corev1 "k8s.io/api/core/v1"

// DefaultObjectives are a DPA's objectives when its spec sets none, as the Datadog API
// documents them: the pods' CPU at 80 % of their requests.
func DefaultObjectives() []DatadogPodAutoscalerObjective {
	utilization := int32(80)
	return []DatadogPodAutoscalerObjective{{Type: DatadogPodAutoscalerPodResourceObjectiveType,
		PodResource: &DatadogPodAutoscalerPodResourceObjective{Name: "cpu",
			Value: DatadogPodAutoscalerObjectiveValue{Type: DatadogPodAutoscalerUtilizationObjectiveValueType, Utilization: &utilization}}}}
}

// ObjectivesOf are the spec's objectives, or DefaultObjectives when it has none.
func ObjectivesOf(spec *DatadogPodAutoscalerSpec) []DatadogPodAutoscalerObjective {
	if len(spec.Objectives) == 0 {
		return DefaultObjectives()
	}
	return spec.Objectives
}

// RequestBounds are the container's lower and upper bounds of the requests: minAllowed and
// maxAllowed, else each from the older requests.minAllowed and requests.maxAllowed.
func (c *DatadogPodAutoscalerContainerConstraints) RequestBounds() (lower, upper corev1.ResourceList) {
	lower, upper = c.MinAllowed, c.MaxAllowed
	if c.Requests != nil {
		if lower == nil {
			lower = c.Requests.MinAllowed
		}
		if upper == nil {
			upper = c.Requests.MaxAllowed
		}
	}
	return lower, upper
}
