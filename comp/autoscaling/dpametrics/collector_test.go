package dpametrics

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

type staticSource map[string]*v1alpha2.DatadogPodAutoscaler

func (s staticSource) Keys() []string { return slices.Collect(maps.Keys(s)) }
func (s staticSource) Get(k string) *v1alpha2.DatadogPodAutoscaler {
	return s[k]
}

func dpa(ns, name string) *v1alpha2.DatadogPodAutoscaler {
	d := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	d.Spec.TargetRef = v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: name}
	return d
}

func TestPerDPASeries(t *testing.T) {
	at := metav1.NewTime(time.Unix(1_800_000_000, 0))
	web := dpa("shop", "web")
	web.Spec.ApplyPolicy = &v1alpha2.DatadogPodAutoscalerApplyPolicy{Mode: v1alpha2.DatadogPodAutoscalerApplyModePreview}
	web.Status = v1alpha2.DatadogPodAutoscalerStatus{
		CurrentReplicas: ptr(int32(3)),
		Horizontal: &v1alpha2.DatadogPodAutoscalerHorizontalStatus{
			Target:      &v1alpha2.DatadogPodAutoscalerHorizontalTargetStatus{DesiredReplicas: 5, GeneratedAt: at},
			LastActions: []v1alpha2.DatadogPodAutoscalerHorizontalAction{{Time: metav1.NewTime(at.Add(-time.Minute))}, {Time: at}},
		},
		Vertical: &v1alpha2.DatadogPodAutoscalerVerticalStatus{
			Target: &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{GeneratedAt: at, DesiredResources: []v1alpha2.DatadogPodAutoscalerContainerResources{
				{Name: "app", Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
			}},
		},
		Conditions: []v1alpha2.DatadogPodAutoscalerCondition{
			{Type: v1alpha2.ConditionActive, Status: metav1.ConditionTrue},
			{Type: v1alpha2.ConditionError, Status: metav1.ConditionFalse},
		},
	}
	src := staticSource{"shop/web": web, "shop/api": dpa("shop", "api")}
	var current Source = src
	c := New(func() Source { return current }, 10)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))

	want := `
# HELP lazyscale_autoscaling_autoscalers DPAs the running stack holds; 0 while the gate is closed.
# TYPE lazyscale_autoscaling_autoscalers gauge
lazyscale_autoscaling_autoscalers 2
# HELP lazyscale_autoscaling_dpa_condition 1 while the DPA's condition is True, 0 while False or Unknown.
# TYPE lazyscale_autoscaling_dpa_condition gauge
lazyscale_autoscaling_dpa_condition{condition="Active",name="web",namespace="shop"} 1
lazyscale_autoscaling_dpa_condition{condition="Error",name="web",namespace="shop"} 0
# HELP lazyscale_autoscaling_dpa_current_replicas Replicas of the DPA's target (status.currentReplicas).
# TYPE lazyscale_autoscaling_dpa_current_replicas gauge
lazyscale_autoscaling_dpa_current_replicas{name="web",namespace="shop"} 3
# HELP lazyscale_autoscaling_dpa_desired_replicas Replicas the DPA's horizontal recommendation asks for (status.horizontal.target).
# TYPE lazyscale_autoscaling_dpa_desired_replicas gauge
lazyscale_autoscaling_dpa_desired_replicas{name="web",namespace="shop"} 5
# HELP lazyscale_autoscaling_dpa_info Always 1 per DPA: its target and mode as labels.
# TYPE lazyscale_autoscaling_dpa_info gauge
lazyscale_autoscaling_dpa_info{mode="Apply",name="api",namespace="shop",target_kind="Deployment",target_name="api"} 1
lazyscale_autoscaling_dpa_info{mode="Preview",name="web",namespace="shop",target_kind="Deployment",target_name="web"} 1
# HELP lazyscale_autoscaling_dpa_last_action_timestamp_seconds When lazyscale last acted on the DPA's target (Unix time), by direction.
# TYPE lazyscale_autoscaling_dpa_last_action_timestamp_seconds gauge
lazyscale_autoscaling_dpa_last_action_timestamp_seconds{direction="horizontal",name="web",namespace="shop"} 1.8e+09
# HELP lazyscale_autoscaling_dpa_recommendation_timestamp_seconds When the DPA's current recommendation was generated (Unix time), by direction.
# TYPE lazyscale_autoscaling_dpa_recommendation_timestamp_seconds gauge
lazyscale_autoscaling_dpa_recommendation_timestamp_seconds{direction="horizontal",name="web",namespace="shop"} 1.8e+09
lazyscale_autoscaling_dpa_recommendation_timestamp_seconds{direction="vertical",name="web",namespace="shop"} 1.8e+09
# HELP lazyscale_autoscaling_dpa_recommended_requests Requests the DPA's vertical recommendation sets per container: CPU in cores, memory in bytes.
# TYPE lazyscale_autoscaling_dpa_recommended_requests gauge
lazyscale_autoscaling_dpa_recommended_requests{container="app",name="web",namespace="shop",resource="cpu"} 0.25
lazyscale_autoscaling_dpa_recommended_requests{container="app",name="web",namespace="shop",resource="memory"} 1.34217728e+08
# HELP lazyscale_autoscaling_dpa_series_dropped DPAs left out of the per-DPA series because there are more than autoscaling.workload.metrics_max.
# TYPE lazyscale_autoscaling_dpa_series_dropped gauge
lazyscale_autoscaling_dpa_series_dropped 0
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want)))

	// The DPA goes: its series go with it.
	delete(src, "shop/web")
	n, err := testutil.GatherAndCount(reg, MetricCurrentReplicas, MetricInfo, MetricCondition)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only api's info is left")

	// Bounded: above max, the first by namespace/name are kept and the rest counted.
	for i := range 20 {
		k := dpa("big", strings.Repeat("x", i+1))
		src[k.Namespace+"/"+k.Name] = k
	}
	n, err = testutil.GatherAndCount(reg, MetricInfo)
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	assert.Equal(t, 11.0, gaugeValue(t, reg, MetricSeriesDropped))

	// The gate closed: no view, no per-DPA series.
	current = nil
	n, err = testutil.GatherAndCount(reg, MetricInfo)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Zero(t, gaugeValue(t, reg, MetricAutoscalers))
}

func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}

func ptr[T any](v T) *T { return &v }
