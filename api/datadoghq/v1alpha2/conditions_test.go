package v1alpha2

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSetConditionMovesTheTransitionTimeOnlyOnAStatusChange(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	var conds []DatadogPodAutoscalerCondition
	SetCondition(&conds, DatadogPodAutoscalerCondition{Type: "Active", Status: metav1.ConditionTrue, Reason: "A", LastTransitionTime: t0})
	SetCondition(&conds, DatadogPodAutoscalerCondition{Type: "Active", Status: metav1.ConditionTrue, Reason: "B", LastTransitionTime: t1})
	c := FindCondition(conds, "Active")
	assert.Equal(t, t0, c.LastTransitionTime, "same status: the time stays")
	assert.Equal(t, "B", c.Reason)
	SetCondition(&conds, DatadogPodAutoscalerCondition{Type: "Active", Status: metav1.ConditionFalse, LastTransitionTime: t1})
	assert.Equal(t, t1, FindCondition(conds, "Active").LastTransitionTime)
	assert.False(t, IsConditionTrue(conds, "Active"))
	assert.False(t, IsConditionTrue(conds, "Error"), "absent")
	assert.Len(t, conds, 1)
}

func TestRequestBoundsReadTheOlderFieldsWhenTheNewOnesAreUnset(t *testing.T) {
	old := &DatadogPodAutoscalerContainerResourceConstraints{
		MinAllowed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		MaxAllowed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
	}
	lo, hi := (&DatadogPodAutoscalerContainerConstraints{Requests: old}).RequestBounds()
	assert.Equal(t, "100m", lo.Cpu().String())
	assert.Equal(t, "1", hi.Cpu().String())
	lo, hi = (&DatadogPodAutoscalerContainerConstraints{Requests: old,
		MinAllowed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}}).RequestBounds()
	assert.Equal(t, "200m", lo.Cpu().String(), "minAllowed wins")
	assert.Equal(t, "1", hi.Cpu().String())
}

func TestObjectivesDefaultToPodCPUAt80Percent(t *testing.T) {
	o := ObjectivesOf(&DatadogPodAutoscalerSpec{})
	assert.Len(t, o, 1)
	assert.Equal(t, corev1.ResourceName("cpu"), o[0].PodResource.Name)
	assert.Equal(t, int32(80), *o[0].PodResource.Value.Utilization)
	own := []DatadogPodAutoscalerObjective{{Type: DatadogPodAutoscalerCustomQueryObjectiveType}}
	assert.Equal(t, own, ObjectivesOf(&DatadogPodAutoscalerSpec{Objectives: own}))
}
