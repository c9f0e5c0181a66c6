package impl

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
	assert.Equal(t, recommendationVersion(a), recommendationVersion(b), "order and spelling do not matter")
	assert.Len(t, recommendationVersion(a), 16)
	c := []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "a", Requests: rl("cpu", "501m", "memory", "1Gi")}, {Name: "b", Requests: rl("cpu", "1")}}
	assert.NotEqual(t, recommendationVersion(a), recommendationVersion(c))
}

func TestDecideRollout(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *v1alpha2.DatadogPodAutoscalerVerticalAction {
		return &v1alpha2.DatadogPodAutoscalerVerticalAction{Time: metav1.NewTime(now.Add(-ago)), Version: "v1"}
	}
	lagging := podCounts{Current: 3, ByRecID: map[string]int32{"v0": 3}}
	tests := []struct {
		name     string
		template string
		pods     podCounts
		last     *v1alpha2.DatadogPodAutoscalerVerticalAction
		trigger  bool
		retry    time.Duration
	}{
		{"no pods", "", podCounts{ByRecID: map[string]int32{}}, nil, false, 0},
		{"all pods current", "v1", podCounts{Current: 2, ByRecID: map[string]int32{"v1": 2}}, nil, false, 0},
		{"first rollout", "", lagging, nil, true, 0},
		{"new version, last rollout long ago", "v0", lagging, at(time.Hour), true, 0},
		{"new version too soon", "v0", lagging, at(4 * time.Minute), false, 6 * time.Minute},
		{"in progress", "v1", podCounts{Current: 3, ByRecID: map[string]int32{"v1": 1, "v0": 2}}, at(time.Minute), false, 9 * time.Minute},
		{"stalled", "v1", podCounts{Current: 3, ByRecID: map[string]int32{"v1": 1, "v0": 2}}, at(11 * time.Minute), true, 0},
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

func TestApplyToContainer(t *testing.T) {
	tests := []struct {
		name         string
		in           corev1.ResourceRequirements
		desired      v1alpha2.DatadogPodAutoscalerContainerResources
		onlyRequests bool
		want         corev1.ResourceRequirements
	}{
		{"nil maps are created", corev1.ResourceRequirements{},
			v1alpha2.DatadogPodAutoscalerContainerResources{Requests: rl("cpu", "300m"), Limits: rl("cpu", "600m")}, false,
			corev1.ResourceRequirements{Requests: rl("cpu", "300m"), Limits: rl("cpu", "600m")}},
		{"limit keeps its ratio", corev1.ResourceRequirements{Requests: rl("memory", "256Mi"), Limits: rl("memory", "512Mi")},
			v1alpha2.DatadogPodAutoscalerContainerResources{Requests: rl("memory", "300Mi")}, false,
			corev1.ResourceRequirements{Requests: rl("memory", "300Mi"), Limits: rl("memory", "600Mi")}},
		{"no limit stays unlimited", corev1.ResourceRequirements{Requests: rl("cpu", "100m")},
			v1alpha2.DatadogPodAutoscalerContainerResources{Requests: rl("cpu", "200m")}, false,
			corev1.ResourceRequirements{Requests: rl("cpu", "200m")}},
		{"RequestsOnly caps at the limit", corev1.ResourceRequirements{Requests: rl("cpu", "100m"), Limits: rl("cpu", "500m")},
			v1alpha2.DatadogPodAutoscalerContainerResources{Requests: rl("cpu", "2")}, true,
			corev1.ResourceRequirements{Requests: rl("cpu", "500m"), Limits: rl("cpu", "500m")}},
		{"extended resources", corev1.ResourceRequirements{Limits: rl("nvidia.com/gpu", "1")},
			v1alpha2.DatadogPodAutoscalerContainerResources{Requests: rl("nvidia.com/gpu", "1"), Limits: rl("nvidia.com/gpu", "1")}, false,
			corev1.ResourceRequirements{Requests: rl("nvidia.com/gpu", "1"), Limits: rl("nvidia.com/gpu", "1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &corev1.Container{Resources: tt.in}
			changed := applyToContainer(c, tt.desired, tt.onlyRequests)
			assert.True(t, changed)
			for name, q := range tt.want.Requests {
				got := c.Resources.Requests[name]
				assert.Zero(t, q.Cmp(got), "request %s: want %s got %s", name, q.String(), got.String())
			}
			for name, q := range tt.want.Limits {
				got := c.Resources.Limits[name]
				assert.Zero(t, q.Cmp(got), "limit %s: want %s got %s", name, q.String(), got.String())
			}
			assert.Len(t, c.Resources.Limits, len(tt.want.Limits))
			assert.False(t, applyToContainer(c, tt.desired, tt.onlyRequests), "applying twice changes nothing")
		})
	}
}

func TestPodPatcherFollowsTheStatus(t *testing.T) {
	a := newAutoscalers()
	dpa := &v1alpha2.DatadogPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec:       v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"}},
		Status: v1alpha2.DatadogPodAutoscalerStatus{
			Conditions: []metav1.Condition{{Type: v1alpha2.ConditionActive, Status: metav1.ConditionTrue}},
			Vertical: &v1alpha2.DatadogPodAutoscalerVerticalStatus{Target: &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{
				Version: "abc", DesiredResources: []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "app", Requests: rl("cpu", "400m")}}}},
		},
	}
	a.byKey["shop/web"] = dpa
	a.byTarget[targetOf(dpa)] = []string{"shop/web"}
	p := &podPatcher{autoscalers: a}
	pod := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Labels: map[string]string{"pod-template-hash": "h1"},
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-h1", Controller: ptrTo(true)}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
		}
	}
	got := pod()
	changed, err := p.PatchPod(got)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Equal(t, "shop/web", got.Annotations[v1alpha2.AutoscalerIDAnnotation])
	assert.Equal(t, "abc", got.Annotations[v1alpha2.RecommendationIDAnnotation])
	assert.Equal(t, "400m", ptrQ(got.Spec.Containers[0].Resources.Requests.Cpu()))

	dpa.Spec.ApplyPolicy = &v1alpha2.DatadogPodAutoscalerApplyPolicy{Mode: v1alpha2.DatadogPodAutoscalerApplyModePreview}
	changed, _ = p.PatchPod(pod())
	assert.False(t, changed, "Preview is skipped")
	dpa.Spec.ApplyPolicy = nil
	dpa.Annotations = map[string]string{v1alpha2.PauseAnnotation: "true"}
	changed, _ = p.PatchPod(pod())
	assert.False(t, changed, "paused is skipped")
	dpa.Annotations = nil
	dpa.Status.Conditions[0].Status = metav1.ConditionFalse
	changed, _ = p.PatchPod(pod())
	assert.False(t, changed, "inactive (invalid, conflicting, over the limit) is skipped")
}
