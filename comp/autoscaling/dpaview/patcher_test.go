package dpaview

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

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

func ptrQ(q *resource.Quantity) string { return q.String() }

func ptrTo[T any](v T) *T { return &v }

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
			changed := ApplyToContainer(c, tt.desired, tt.onlyRequests)
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
			assert.False(t, ApplyToContainer(c, tt.desired, tt.onlyRequests), "applying twice changes nothing")
		})
	}
}

func TestApplyWithConstraintRemovesTheCPULimit(t *testing.T) {
	mode := v1alpha2.DatadogPodAutoscalerContainerControlledValuesCPURequestsRemoveLimitsMemoryRequestsAndLimits
	c := &corev1.Container{Resources: corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "128Mi"), Limits: rl("cpu", "500m", "memory", "256Mi")}}
	changed := ApplyWithConstraint(c, v1alpha2.DatadogPodAutoscalerContainerResources{Requests: rl("cpu", "200m", "memory", "192Mi")},
		&v1alpha2.DatadogPodAutoscalerContainerConstraints{Name: "*", ControlledValues: &mode}, false)
	assert.True(t, changed)
	assert.Equal(t, "200m", ptrQ(c.Resources.Requests.Cpu()))
	assert.NotContains(t, c.Resources.Limits, corev1.ResourceCPU, "the CPU limit is removed")
	assert.Equal(t, "384Mi", ptrQ(c.Resources.Limits.Memory()), "the memory limit keeps its ratio")

	only := v1alpha2.DatadogPodAutoscalerContainerControlledValuesRequestsOnly
	c = &corev1.Container{Resources: corev1.ResourceRequirements{Requests: rl("cpu", "100m"), Limits: rl("cpu", "500m")}}
	ApplyWithConstraint(c, v1alpha2.DatadogPodAutoscalerContainerResources{Requests: rl("cpu", "200m")},
		&v1alpha2.DatadogPodAutoscalerContainerConstraints{Name: "*", ControlledValues: &only}, true)
	assert.Equal(t, "500m", ptrQ(c.Resources.Limits.Cpu()), "RequestsOnly keeps the limit, burstable or not")

	// burstable: the CPU limit goes whatever controlledValues says.
	c = &corev1.Container{Resources: corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "128Mi"), Limits: rl("cpu", "500m", "memory", "256Mi")}}
	ApplyWithConstraint(c, v1alpha2.DatadogPodAutoscalerContainerResources{Requests: rl("cpu", "200m")}, nil, true)
	assert.NotContains(t, c.Resources.Limits, corev1.ResourceCPU, "burstable removes the CPU limit")
	assert.Equal(t, "256Mi", ptrQ(c.Resources.Limits.Memory()))
}

func TestPodPatcherFollowsTheStatus(t *testing.T) {
	v := New(nil, zap.NewNop())
	dpa := &v1alpha2.DatadogPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec:       v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"}},
		Status: v1alpha2.DatadogPodAutoscalerStatus{
			Conditions: []v1alpha2.DatadogPodAutoscalerCondition{{Type: v1alpha2.ConditionActive, Status: metav1.ConditionTrue}},
			Vertical: &v1alpha2.DatadogPodAutoscalerVerticalStatus{Target: &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{
				Version: "abc", DesiredResources: []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "app", Requests: rl("cpu", "400m")}}}},
		},
	}
	put := func() { // through the view's informer handler, as the cache delivers it
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dpa)
		require.NoError(t, err)
		v.set(&unstructured.Unstructured{Object: u})
	}
	put()
	p := NewPatcher(v)
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

	// A pod whose template names a recommendation the view does not hold (yet) does not
	// claim it: it carries no resources of it.
	target := dpa.Status.Vertical.Target
	dpa.Status.Vertical.Target = nil
	put()
	got = pod()
	got.Annotations = map[string]string{v1alpha2.RecommendationIDAnnotation: "def"}
	changed, _ = p.PatchPod(got)
	assert.True(t, changed)
	assert.NotContains(t, got.Annotations, v1alpha2.RecommendationIDAnnotation)
	assert.Equal(t, "shop/web", got.Annotations[v1alpha2.AutoscalerIDAnnotation])
	dpa.Status.Vertical.Target = target

	dpa.Spec.ApplyPolicy = &v1alpha2.DatadogPodAutoscalerApplyPolicy{Mode: v1alpha2.DatadogPodAutoscalerApplyModePreview}
	put()
	changed, _ = p.PatchPod(pod())
	assert.False(t, changed, "Preview is skipped")
	dpa.Spec.ApplyPolicy = nil
	dpa.Annotations = map[string]string{v1alpha2.PauseAnnotation: "true"}
	put()
	changed, _ = p.PatchPod(pod())
	assert.False(t, changed, "paused is skipped")
	dpa.Annotations = nil
	dpa.Spec.ApplyPolicy = &v1alpha2.DatadogPodAutoscalerApplyPolicy{Update: &v1alpha2.DatadogPodAutoscalerUpdatePolicy{Strategy: v1alpha2.DatadogPodAutoscalerDisabledUpdateStrategy}}
	put()
	changed, _ = p.PatchPod(pod())
	assert.False(t, changed, "update.strategy Disabled is skipped")
	dpa.Spec.ApplyPolicy = nil
	dpa.Status.Conditions[0].Status = metav1.ConditionFalse
	put()
	changed, _ = p.PatchPod(pod())
	assert.False(t, changed, "inactive (invalid, conflicting, over the limit) is skipped")
}

// The first change records what the changed containers had (null: absent); a later one keeps
// that record.
func TestApplyRecommendationRecordsTheOriginalResources(t *testing.T) {
	dpa := &v1alpha2.DatadogPodAutoscaler{Status: v1alpha2.DatadogPodAutoscalerStatus{Vertical: &v1alpha2.DatadogPodAutoscalerVerticalStatus{
		Target: &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{DesiredResources: []v1alpha2.DatadogPodAutoscalerContainerResources{
			{Name: "app", Requests: rl("cpu", "200m")}}}}}}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "app", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "100m"), Limits: rl("memory", "256Mi")}},
		{Name: "sidecar"},
	}}}
	assert.True(t, ApplyRecommendation(dpa, pod))
	assert.JSONEq(t, `{"app":{"requests":{"cpu":"100m","memory":null},"limits":{"cpu":null,"memory":"256Mi"}}}`, pod.Annotations[v1alpha2.OriginalResourcesAnnotation])
	dpa.Status.Vertical.Target.DesiredResources[0].Requests = rl("cpu", "300m")
	assert.True(t, ApplyRecommendation(dpa, pod))
	assert.Contains(t, pod.Annotations[v1alpha2.OriginalResourcesAnnotation], `"100m"`, "the first record stays")
	assert.False(t, ApplyRecommendation(dpa, pod), "nothing left to change")
}

// A new leader's first pass starts with the DPAs no leader has reconciled yet.
func TestKeysNewFirst(t *testing.T) {
	v := New(nil, zap.NewNop())
	for _, d := range []struct {
		name string
		seen bool
	}{{"a", true}, {"b", false}, {"c", true}, {"d", false}} {
		dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: d.name},
			Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: d.name}}}
		if d.seen {
			dpa.Status.Conditions = []v1alpha2.DatadogPodAutoscalerCondition{{Type: v1alpha2.ConditionActive, Status: metav1.ConditionTrue}}
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dpa)
		require.NoError(t, err)
		v.set(&unstructured.Unstructured{Object: u})
	}
	assert.Equal(t, []string{"shop/b", "shop/d", "shop/a", "shop/c"}, v.KeysNewFirst())
}

// An update of the status alone reaches the handlers that ask for it, not those that ignore
// it (the controller: its own writes echo back so); a change of an annotation reaches both.
func TestIgnoreStatus(t *testing.T) {
	v := New(nil, zap.NewNop())
	var all, specOnly int
	v.handlers = []Handler{{OnChange: func([]string) { all++ }}, {OnChange: func([]string) { specOnly++ }, IgnoreStatus: true}}
	dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 1, ResourceVersion: "1"},
		Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"}}}
	put := func() {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dpa)
		require.NoError(t, err)
		v.set(&unstructured.Unstructured{Object: u})
	}
	put()
	assert.Equal(t, [2]int{1, 1}, [2]int{all, specOnly}, "an add reaches both")
	dpa.ResourceVersion = "2"
	dpa.Status.Conditions = []v1alpha2.DatadogPodAutoscalerCondition{{Type: v1alpha2.ConditionActive, Status: metav1.ConditionTrue}}
	put()
	assert.Equal(t, [2]int{2, 1}, [2]int{all, specOnly}, "a status write reaches only the first")
	assert.True(t, v1alpha2.IsConditionTrue(v.Get("shop/web").Status.Conditions, v1alpha2.ConditionActive), "the view holds the new status")
	dpa.Annotations = map[string]string{v1alpha2.ForceReplicasAnnotation: "3"}
	put()
	assert.Equal(t, [2]int{3, 2}, [2]int{all, specOnly}, "an annotation reaches both")
	dpa.Generation = 2
	put()
	assert.Equal(t, [2]int{4, 3}, [2]int{all, specOnly}, "a new generation reaches both")
}

// A target is reported orphaned once no DPA targets it: when its DPA moves to another workload
// and when the last of its DPAs is removed, not while another DPA still targets it.
func TestOnOrphan(t *testing.T) {
	v := New(nil, zap.NewNop())
	var orphaned []def.Target
	var removed []int
	v.handlers = []Handler{{OnOrphan: func(t def.Target) { orphaned = append(orphaned, t) }, OnRemove: func(n int) { removed = append(removed, n) }}}
	put := func(name, target string) {
		dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: target}}}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dpa)
		require.NoError(t, err)
		v.set(&unstructured.Unstructured{Object: u})
	}
	web, api := def.Target{Namespace: "shop", Kind: "Deployment", Name: "web"}, def.Target{Namespace: "shop", Kind: "Deployment", Name: "api"}
	put("a", "web")
	put("b", "web")
	put("a", "api")
	assert.Empty(t, orphaned, "b still targets web")
	put("b", "api")
	assert.Equal(t, []def.Target{web}, orphaned, "web lost its last DPA when b moved away")
	v.remove("shop/a")
	assert.Equal(t, []def.Target{web}, orphaned, "b still targets api")
	v.remove("shop/b")
	assert.Equal(t, []def.Target{web, api}, orphaned)
	assert.Equal(t, []int{1, 0}, removed)
	v.remove("shop/b")
	assert.Equal(t, []int{1, 0}, removed, "removing what the view does not hold reports nothing")
}
