package local

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

// metricsAPI answers PodMetrics lists from a map the test changes, and records selectors.
type metricsAPI struct {
	usage     map[string]corev1.ResourceList // pod -> usage of its one container "app"
	at        time.Time
	err       error
	selectors []string
}

func (m *metricsAPI) PodMetricses(string) metricsclient.PodMetricsInterface { return m }

func (m *metricsAPI) Get(context.Context, string, metav1.GetOptions) (*metricsv1beta1.PodMetrics, error) {
	return nil, apierrors.NewMethodNotSupported(schema.GroupResource{}, "get")
}

func (m *metricsAPI) Watch(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return nil, apierrors.NewMethodNotSupported(schema.GroupResource{}, "watch")
}

func (m *metricsAPI) List(_ context.Context, o metav1.ListOptions) (*metricsv1beta1.PodMetricsList, error) {
	m.selectors = append(m.selectors, o.LabelSelector)
	if m.err != nil {
		return nil, m.err
	}
	l := &metricsv1beta1.PodMetricsList{}
	for pod, u := range m.usage {
		l.Items = append(l.Items, metricsv1beta1.PodMetrics{ObjectMeta: metav1.ObjectMeta{Name: pod}, Timestamp: metav1.NewTime(m.at),
			Containers: []metricsv1beta1.ContainerMetrics{{Name: "app", Usage: u}}})
	}
	return l, nil
}

func usage(cpu, memory string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
}

func cpuObjective(utilization int32) v1alpha2.DatadogPodAutoscalerObjective {
	return v1alpha2.DatadogPodAutoscalerObjective{Type: v1alpha2.DatadogPodAutoscalerPodResourceObjectiveType,
		PodResource: &v1alpha2.DatadogPodAutoscalerPodResourceObjective{Name: corev1.ResourceCPU,
			Value: v1alpha2.DatadogPodAutoscalerObjectiveValue{Type: v1alpha2.DatadogPodAutoscalerUtilizationObjectiveValueType, Utilization: &utilization}}}
}

// request describes three ready pods requesting 200m CPU and 256Mi each.
func request(objectives ...v1alpha2.DatadogPodAutoscalerObjective) def.Request {
	req := def.Request{
		Autoscaler:      &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: v1alpha2.DatadogPodAutoscalerSpec{Objectives: objectives}},
		CurrentReplicas: 3, ReadyReplicas: 3, TargetReplicas: 3, Selector: "app=web",
		Containers: []def.ContainerResources{{Name: "app", Requests: usage("200m", "256Mi")}},
	}
	for _, name := range []string{"web-a", "web-b", "web-c"} {
		req.Pods = append(req.Pods, def.PodState{Name: name, Ready: true,
			Containers: []def.ContainerResources{{Name: "app", Requests: usage("200m", "256Mi"), Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}}})
	}
	return req
}

func TestLocalHorizontal(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	api := &metricsAPI{at: now, usage: map[string]corev1.ResourceList{"web-a": usage("300m", "100Mi"), "web-b": usage("300m", "100Mi"), "web-c": usage("300m", "100Mi")}}
	src := New(api, func() time.Time { return now })

	r, err := src.Recommend(context.Background(), request(cpuObjective(50)))
	require.NoError(t, err)
	require.NotNil(t, r.Replicas)
	assert.Equal(t, int32(9), *r.Replicas, "150%% of the requests against a 50%% target: 3 x 3")
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerLocalValueSource, r.Source)
	assert.Equal(t, []string{"app=web"}, api.selectors, "PodMetrics listed with the workload's selector")

	for _, u := range api.usage {
		u[corev1.ResourceCPU] = resource.MustParse("105m") // 52.5 %: within the 10 % tolerance
	}
	r, err = src.Recommend(context.Background(), request(cpuObjective(50)))
	require.NoError(t, err)
	assert.Equal(t, int32(3), *r.Replicas)

	// Within tolerance the workload's desired count stays, even while fewer pods run.
	during := request(cpuObjective(50))
	during.TargetReplicas = 5
	r, err = src.Recommend(context.Background(), during)
	require.NoError(t, err)
	assert.Equal(t, int32(5), *r.Replicas, "no scale-down to the 3 pods seen during a scale-up")

	api.usage = map[string]corev1.ResourceList{}
	r, err = src.Recommend(context.Background(), request(cpuObjective(50)))
	require.NoError(t, err)
	assert.Nil(t, r.Replicas, "no metrics: no replica count")
}

func TestLocalVerticalAndOOMBump(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	api := &metricsAPI{at: now, usage: map[string]corev1.ResourceList{"web-a": usage("100m", "200Mi"), "web-b": usage("100m", "200Mi"), "web-c": usage("100m", "200Mi")}}
	src := New(api, func() time.Time { return now })
	req := request(cpuObjective(50))

	r, err := src.Recommend(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, r.Containers, 1)
	cpu, mem := r.Containers[0].Requests.Cpu(), r.Containers[0].Requests.Memory()
	assert.InDelta(t, 0.110, cpu.AsApproximateFloat64(), 0.110*0.06, "p90 + 10%%, within a bucket: %s", cpu)
	assert.InDelta(t, 220<<20, mem.AsApproximateFloat64(), 220<<20*0.06, "p95 + 10%%, within a bucket: %s", mem)

	// The same measurement again is not counted twice; a new one is.
	_, err = src.Recommend(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, 3, src.states["shop/web"].containers["app"].samples)

	req.Pods[1].OOMKills = []def.OOMKill{{Container: "app", At: now.Add(-time.Minute)}}
	r, err = src.Recommend(context.Background(), req)
	require.NoError(t, err)
	bumped := r.Containers[0].Requests.Memory()
	// The 512Mi limit it hit joins the samples (p95 lands on it) and the result is x1.2.
	assert.GreaterOrEqual(t, bumped.AsApproximateFloat64(), 512*1.1*1.2*(1<<20)*0.95, "bumped: %s", bumped)

	src.Forget("shop", "web")
	assert.Empty(t, src.states)
}

func TestLocalRebuiltFromStatus(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	api := &metricsAPI{at: now, usage: map[string]corev1.ResourceList{}}
	src := New(api, func() time.Time { return now })
	req := request(cpuObjective(50))
	req.Autoscaler.Status.Vertical = &v1alpha2.DatadogPodAutoscalerVerticalStatus{Target: &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{
		Source: v1alpha2.DatadogPodAutoscalerLocalValueSource, Version: "x",
		DesiredResources: []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "app", Requests: usage("330m", "440Mi")}}}}
	r, err := src.Recommend(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, r.Containers, 1, "a new leader recommends from the seeded histograms without a sample")
	assert.InDelta(t, 0.330, r.Containers[0].Requests.Cpu().AsApproximateFloat64(), 0.330*0.06)
	assert.InDelta(t, 440<<20, r.Containers[0].Requests.Memory().AsApproximateFloat64(), 440<<20*0.06)
}

func TestLocalMetricsAPIErrors(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	api := &metricsAPI{err: apierrors.NewNotFound(schema.GroupResource{Group: "metrics.k8s.io", Resource: "pods"}, "")}
	src := New(api, func() time.Time { return now })
	_, err := src.Recommend(context.Background(), request(cpuObjective(50)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "install metrics-server")
	// Not asked again for a minute.
	_, err = src.Recommend(context.Background(), request(cpuObjective(50)))
	require.Error(t, err)
	assert.Len(t, api.selectors, 1)
	now = now.Add(61 * time.Second)
	_, _ = src.Recommend(context.Background(), request(cpuObjective(50)))
	assert.Len(t, api.selectors, 2)
}

// A local value within 10 % of the one in status is not a new recommendation (no new
// version, no rollout); a bigger move is.
func TestLocalKeepsCloseValues(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	api := &metricsAPI{at: now, usage: map[string]corev1.ResourceList{"web-a": usage("100m", "200Mi"), "web-b": usage("100m", "200Mi"), "web-c": usage("100m", "200Mi")}}
	src := New(api, func() time.Time { return now })
	req := request(cpuObjective(50))
	req.Autoscaler.Status.Vertical = &v1alpha2.DatadogPodAutoscalerVerticalStatus{Target: &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{
		Source:           v1alpha2.DatadogPodAutoscalerLocalValueSource,
		DesiredResources: []v1alpha2.DatadogPodAutoscalerContainerResources{{Name: "app", Requests: usage("105m", "210Mi")}}}}
	src.states["shop/web"] = &autoscalerState{containers: map[string]*containerUsage{}, sampled: map[string]time.Time{}, ooms: map[podContainer]time.Time{}}
	r, err := src.Recommend(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, r.Containers, 1)
	assert.Equal(t, "105m", r.Containers[0].Requests.Cpu().String(), "within 10 %%: the status's value stays")
	assert.Equal(t, "210Mi", r.Containers[0].Requests.Memory().String())

	req.Autoscaler.Status.Vertical.Target.DesiredResources[0].Requests = usage("300m", "210Mi")
	r, err = src.Recommend(context.Background(), req)
	require.NoError(t, err)
	assert.NotEqual(t, "300m", r.Containers[0].Requests.Cpu().String(), "CPU moved by far more than 10 %%: the new value")
}

// An idle container still gets 10m CPU and 32Mi.
func TestLocalFloors(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	api := &metricsAPI{at: now, usage: map[string]corev1.ResourceList{"web-a": usage("0", "1Mi"), "web-b": usage("0", "1Mi"), "web-c": usage("0", "1Mi")}}
	r, err := New(api, func() time.Time { return now }).Recommend(context.Background(), request(cpuObjective(50)))
	require.NoError(t, err)
	require.Len(t, r.Containers, 1)
	assert.Equal(t, "10m", r.Containers[0].Requests.Cpu().String())
	assert.Equal(t, "32Mi", r.Containers[0].Requests.Memory().String())
}

// ContainerResource and AbsoluteValue objectives; measurements older than 5 minutes count as
// missing.
func TestLocalObjectiveKinds(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	api := &metricsAPI{at: now, usage: map[string]corev1.ResourceList{"web-a": usage("100m", "300Mi"), "web-b": usage("100m", "300Mi"), "web-c": usage("100m", "300Mi")}}
	src := New(api, func() time.Time { return now })

	abs := resource.MustParse("100Mi")
	memoryPerPod := v1alpha2.DatadogPodAutoscalerObjective{Type: v1alpha2.DatadogPodAutoscalerPodResourceObjectiveType,
		PodResource: &v1alpha2.DatadogPodAutoscalerPodResourceObjective{Name: corev1.ResourceMemory,
			Value: v1alpha2.DatadogPodAutoscalerObjectiveValue{Type: v1alpha2.DatadogPodAutoscalerAbsoluteValueObjectiveValueType, AbsoluteValue: &abs}}}
	r, err := src.Recommend(context.Background(), request(memoryPerPod))
	require.NoError(t, err)
	assert.Equal(t, int32(9), *r.Replicas, "300Mi per pod against 100Mi: 3 x 3")

	util := int32(25)
	appCPU := v1alpha2.DatadogPodAutoscalerObjective{Type: v1alpha2.DatadogPodAutoscalerContainerResourceObjectiveType,
		ContainerResource: &v1alpha2.DatadogPodAutoscalerContainerResourceObjective{Name: corev1.ResourceCPU, Container: "app",
			Value: v1alpha2.DatadogPodAutoscalerObjectiveValue{Type: v1alpha2.DatadogPodAutoscalerUtilizationObjectiveValueType, Utilization: &util}}}
	r, err = src.Recommend(context.Background(), request(appCPU))
	require.NoError(t, err)
	assert.Equal(t, int32(6), *r.Replicas, "app at 50 %% of its 200m against 25 %%: 3 x 2")

	r, err = src.Recommend(context.Background(), request(appCPU, memoryPerPod))
	require.NoError(t, err)
	assert.Equal(t, int32(9), *r.Replicas, "several objectives: the highest count")

	now = now.Add(6 * time.Minute) // the metrics API still answers the same, old, measurements
	r, err = src.Recommend(context.Background(), request(appCPU))
	require.NoError(t, err)
	assert.Nil(t, r.Replicas, "measurements 6 minutes old: no replica count")
}
