package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/podwatcher"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func TestConstrain(t *testing.T) {
	template := []corev1.Container{{Name: "app"}, {Name: "sidecar"}, {Name: "off"}}
	requestsOnlyV := v1alpha2.DatadogPodAutoscalerContainerControlledValuesRequestsOnly
	dpa := &v1alpha2.DatadogPodAutoscaler{Spec: v1alpha2.DatadogPodAutoscalerSpec{Constraints: &v1alpha2.DatadogPodAutoscalerConstraints{
		Containers: []v1alpha2.DatadogPodAutoscalerContainerConstraints{
			{Name: "*", MinAllowed: rl("memory", "128Mi"), MaxAllowed: rl("cpu", "1")},
			{Name: "sidecar", ControlledValues: &requestsOnlyV, ControlledResources: []corev1.ResourceName{"cpu"}},
			{Name: "off", Enabled: ptrTo(false)},
		},
	}}}
	rec := []def.ContainerResources{
		{Name: "sidecar", Requests: rl("cpu", "50m", "memory", "1Gi"), Limits: rl("cpu", "100m")},
		{Name: "app", Requests: rl("cpu", "2", "memory", "64Mi", "nvidia.com/gpu", "1"), Limits: rl("memory", "100Mi")},
		{Name: "off", Requests: rl("cpu", "1")},
		{Name: "ghost", Requests: rl("cpu", "1")},
	}
	got, limited := constrain(dpa, rec, template)
	require.Len(t, got, 2)
	assert.Equal(t, "app", got[0].Name, "sorted by name")
	assert.True(t, equality.Semantic.DeepEqual(rl("cpu", "1", "memory", "128Mi"), got[0].Requests), "clamped; gpu not controlled: %v", got[0].Requests)
	assert.Equal(t, "128Mi", ptrQ(got[0].Limits.Memory()), "limit raised to its request")
	assert.True(t, equality.Semantic.DeepEqual(rl("cpu", "50m"), got[1].Requests), "sidecar controls cpu only: %v", got[1].Requests)
	assert.Nil(t, got[1].Limits, "RequestsOnly drops limits")
	assert.Contains(t, limited, "container ghost is not in the workload")
	assert.Contains(t, limited, "cpu request of app lowered from 2 to maxAllowed 1")
	assert.Contains(t, limited, "memory request of app raised from 64Mi to minAllowed 128Mi")
}

func ptrQ(q *resource.Quantity) string { return q.String() }

func TestRecommendationVersionIsStable(t *testing.T) {
	a := []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "b", Requests: rl("cpu", "1")}, {Name: "a", Requests: rl("memory", "1Gi", "cpu", "500m")}}
	b := []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "a", Requests: rl("cpu", "0.5", "memory", "1024Mi")}, {Name: "b", Requests: rl("cpu", "1000m")}}
	assert.Equal(t, recommendationVersion(a, false), recommendationVersion(b, false), "order and spelling do not matter")
	assert.Len(t, recommendationVersion(a, false), 16)
	assert.NotEqual(t, recommendationVersion(a, false), recommendationVersion(a, true), "burstable is part of the version")
	c := []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "a", Requests: rl("cpu", "501m", "memory", "1Gi")}, {Name: "b", Requests: rl("cpu", "1")}}
	assert.NotEqual(t, recommendationVersion(a, false), recommendationVersion(c, false))
}

// Right after a rollout the view may still hold the status without it: the template, read
// fresh, says the rollout happened, and nothing rolls out a second time.
func TestRolloutFromTemplate(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tmpl := func(recID, at string) *corev1.PodTemplateSpec {
		return &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
			v1alpha2.RecommendationIDAnnotation: recID, v1alpha2.RolloutAtAnnotation: at}}}
	}
	lagging := podwatcher.Counts{Current: 6, ByRecID: map[string]int32{"v0": 6}}

	last := rolloutFromTemplate(nil, tmpl("v1", now.Format(time.RFC3339)), "v1")
	require.NotNil(t, last, "the template's rollout stands for the status not seen yet")
	assert.Equal(t, reasonRolloutTriggered, last.Type)
	d := decideRollout("v1", "v1", lagging, last, 10*time.Minute, now)
	assert.False(t, d.Trigger, "in progress, not stalled: %s", d.Reason)
	assert.Equal(t, 10*time.Minute, d.Retry)

	older := &v1alpha2.DatadogPodAutoscalerVerticalAction{Time: metav1.NewTime(now.Add(-time.Hour)), Version: "v0", Type: reasonRolloutTriggered}
	assert.Equal(t, metav1.NewTime(now), rolloutFromTemplate(older, tmpl("v1", now.Format(time.RFC3339)), "v1").Time, "a newer rollout in the template wins")
	newer := &v1alpha2.DatadogPodAutoscalerVerticalAction{Time: metav1.NewTime(now.Add(time.Minute)), Version: "v1", Type: actionResizeTriggered}
	assert.Same(t, newer, rolloutFromTemplate(newer, tmpl("v1", now.Format(time.RFC3339)), "v1"), "a newer action in the status wins")
	assert.Nil(t, rolloutFromTemplate(nil, tmpl("v0", now.Format(time.RFC3339)), "v1"), "another recommendation's rollout")
	assert.Nil(t, rolloutFromTemplate(nil, tmpl("v1", "yesterday"), "v1"), "no usable time")
	assert.Nil(t, rolloutFromTemplate(nil, nil, "v1"), "a kind read through /scale has no template")
}

func TestDecideRollout(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *v1alpha2.DatadogPodAutoscalerVerticalAction {
		return &v1alpha2.DatadogPodAutoscalerVerticalAction{Time: metav1.NewTime(now.Add(-ago)), Version: "v1"}
	}
	lagging := podwatcher.Counts{Current: 3, ByRecID: map[string]int32{"v0": 3}}
	tests := []struct {
		name     string
		template string
		pods     podwatcher.Counts
		last     *v1alpha2.DatadogPodAutoscalerVerticalAction
		trigger  bool
		retry    time.Duration
	}{
		{"no pods", "", podwatcher.Counts{ByRecID: map[string]int32{}}, nil, false, 0},
		{"all pods current", "v1", podwatcher.Counts{Current: 2, ByRecID: map[string]int32{"v1": 2}}, nil, false, 0},
		{"first rollout", "", lagging, nil, true, 0},
		{"new version, last rollout long ago", "v0", lagging, at(time.Hour), true, 0},
		{"new version too soon", "v0", lagging, at(4 * time.Minute), false, 6 * time.Minute},
		{"in progress", "v1", podwatcher.Counts{Current: 3, ByRecID: map[string]int32{"v1": 1, "v0": 2}}, at(time.Minute), false, 9 * time.Minute},
		{"stalled", "v1", podwatcher.Counts{Current: 3, ByRecID: map[string]int32{"v1": 1, "v0": 2}}, at(11 * time.Minute), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decideRollout("v1", tt.template, tt.pods, tt.last, 10*time.Minute, now)
			assert.Equal(t, tt.trigger, d.Trigger, d.Reason)
			assert.Equal(t, tt.retry, d.Retry)
			assert.NotEmpty(t, d.Reason)
		})
	}
}
