package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FindCondition returns the condition of type t, or nil.
func FindCondition(conditions []DatadogPodAutoscalerCondition, t string) *DatadogPodAutoscalerCondition {
	for i := range conditions {
		if conditions[i].Type == t {
			return &conditions[i]
		}
	}
	return nil
}

// IsConditionTrue says whether the condition of type t is there and True.
func IsConditionTrue(conditions []DatadogPodAutoscalerCondition, t string) bool {
	c := FindCondition(conditions, t)
	return c != nil && c.Status == metav1.ConditionTrue
}

// SetCondition adds or updates the condition of c.Type. Its LastTransitionTime moves only when
// its status changes (set to now when c has none); reason and message follow c.
func SetCondition(conditions *[]DatadogPodAutoscalerCondition, c DatadogPodAutoscalerCondition) {
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = metav1.Now()
	}
	cur := FindCondition(*conditions, c.Type)
	if cur == nil {
		*conditions = append(*conditions, c)
		return
	}
	if cur.Status != c.Status {
		cur.Status, cur.LastTransitionTime = c.Status, c.LastTransitionTime
	}
	cur.Reason, cur.Message = c.Reason, c.Message
}

// RemoveCondition removes the condition of type t, if there is one.
func RemoveCondition(conditions *[]DatadogPodAutoscalerCondition, t string) {
	out := (*conditions)[:0]
	for _, c := range *conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	*conditions = out
}
