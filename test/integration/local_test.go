package integration

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// fastResync makes the controller look at each DPA every 2 s (sources' answers are reused
// for 1 s), so a test sees several local samples quickly.
var fastResync = map[string]string{"autoscaling.workload.resync_period": "2s"}

// scaledDeployment creates a Deployment with n replicas, its ReplicaSet and n ready pods (the
// pods request 250m CPU and 256Mi, limit 512Mi, plus a sidecar), and returns the pod names.
func (e *env) scaledDeployment(ns, name string, n int32) []string {
	e.T.Helper()
	d := testenv.Deployment(ns, name, nil)
	d.Spec.Replicas = &n
	d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{
		corev1.ResourceCPU: testenv.MustQuantity("250m"), corev1.ResourceMemory: testenv.MustQuantity("256Mi")}
	created, err := e.Kube.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(e.T, err)
	owner := e.replicaSet(created, "5f6d7c8b9")
	var names []string
	for i := range n {
		names = append(names, e.rsPod(created, owner, "5f6d7c8b9", strconv.Itoa(int(i))).Name)
	}
	return names
}

func (e *env) replicas(ns, name string) int32 {
	e.T.Helper()
	d, err := e.Kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(e.T, err)
	return *d.Spec.Replicas
}

func (e *env) waitReplicas(ns, name string, n int32) {
	e.T.Helper()
	require.Eventually(e.T, func() bool { return e.replicas(ns, name) == n }, waitFor, 100*time.Millisecond,
		"%s/%s never had %d replicas (has %d)", ns, name, n, e.replicas(ns, name))
}

// waitHorizontalTarget waits until the DPA's horizontal target comes from source with n
// replicas.
func (e *env) waitHorizontalTarget(ns, name string, source v1alpha2.DatadogPodAutoscalerValueSource, n int32) *v1alpha2.DatadogPodAutoscaler {
	e.T.Helper()
	var dpa *v1alpha2.DatadogPodAutoscaler
	ok := assert.Eventually(e.T, func() bool {
		dpa = e.getDPA(ns, name)
		h := dpa.Status.Horizontal
		return h != nil && h.Target != nil && h.Target.Source == source && h.Target.DesiredReplicas == n
	}, waitFor, 100*time.Millisecond)
	if !ok {
		require.FailNow(e.T, fmt.Sprintf("DPA %s/%s never had a %s target of %d", ns, name, source, n), "horizontal %+v\nconditions %+v", dpa.Status.Horizontal, dpa.Status.Conditions)
	}
	return dpa
}

func (e *env) patchDPA(ns, name, patch string) {
	e.T.Helper()
	_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(e.T, err)
}

// The local recommender, reading PodMetrics through the apiserver's aggregation layer from a
// real metrics.k8s.io server: usage above the target scales up; usage within the tolerance
// changes nothing; an OOM kill bumps the memory recommendation.
func TestLocalRecommender(t *testing.T) {
	e := newEnv(t, true)
	m := e.startMetricsServer()
	e.Namespace("shop", nil)
	web := e.scaledDeployment("shop", "web", 3)
	api := e.scaledDeployment("shop", "api", 2)
	m.setUsage("shop", "349m", "200Mi", web...) // 140 % of the 250m requests, against 70 %
	m.setUsage("shop", "180m", "200Mi", api...) // 72 %: within the 10 % tolerance
	e.startAgent(fastResync)
	e.dpa("shop", "web", "web", nil, nil)
	e.dpa("shop", "api", "api", nil, nil)

	// web: ceil(3 x 140/70) = 6; the default scale-up rules allow +4 or +100 % per 15 s.
	e.waitReplicas("shop", "web", 6)
	dpa := e.waitHorizontalTarget("shop", "web", v1alpha2.DatadogPodAutoscalerLocalValueSource, 6)
	c := meta.FindStatusCondition(dpa.Status.Conditions, v1alpha2.ConditionHorizontalAbleToRecommend)
	require.NotNil(t, c)
	assert.Equal(t, "LocalFallback", c.Reason)
	assert.Contains(t, c.Message, "no external recommendation")
	assert.Len(t, dpa.Status.Horizontal.LastActions, 1)
	assert.Contains(t, m.listed(), "app=web", "PodMetrics listed with the Deployment's selector")

	// api: within tolerance, the count stays.
	dpa = e.waitHorizontalTarget("shop", "api", v1alpha2.DatadogPodAutoscalerLocalValueSource, 2)
	assert.Empty(t, dpa.Status.Horizontal.LastActions)
	assert.Equal(t, int32(2), e.replicas("shop", "api"))

	// Vertical: the usage histograms give app ~ p95(200Mi) + 10 %.
	var before float64
	require.Eventually(t, func() bool {
		v := e.getDPA("shop", "api").Status.Vertical
		if v == nil || v.Target == nil || v.Target.Source != v1alpha2.DatadogPodAutoscalerLocalValueSource {
			return false
		}
		for _, c := range v.Target.DesiredResources {
			if c.Name == "app" {
				before = c.Requests.Memory().AsApproximateFloat64()
			}
		}
		return before > 0
	}, waitFor, 100*time.Millisecond, "no local vertical recommendation")
	assert.InDelta(t, 220<<20, before, 220<<20*0.06)

	// An OOM kill of app in one api pod: the 512Mi limit joins the samples and memory is x1.2.
	pod, err := e.Kube.CoreV1().Pods("shop").Get(context.Background(), api[0], metav1.GetOptions{})
	require.NoError(t, err)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 1, Image: "registry.example/app:1", ImageID: "x",
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137,
			FinishedAt: metav1.NewTime(time.Now().Add(-time.Second))}}}}
	_, err = e.Kube.CoreV1().Pods("shop").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
	require.NoError(t, err)
	var after float64
	require.Eventually(t, func() bool {
		for _, c := range e.getDPA("shop", "api").Status.Vertical.Target.DesiredResources {
			if c.Name == "app" {
				after = c.Requests.Memory().AsApproximateFloat64()
			}
		}
		return after >= 512*1.1*1.2*0.95*(1<<20)
	}, waitFor, 100*time.Millisecond, "memory never bumped after the OOM kill (%.0f -> %.0f)", before, after)
}

// Fallback: a stale external recommendation switches the horizontal source to local, a fresh
// one switches it back, and the fallback direction holds.
func TestFallbackToLocal(t *testing.T) {
	e := newEnv(t, true)
	m := e.startMetricsServer()
	e.Namespace("shop", nil)
	pods := e.scaledDeployment("shop", "web", 2)
	m.setUsage("shop", "349m", "200Mi", pods...) // local: ceil(2 x 140/70) = 4
	old := time.Now().Add(-20 * time.Minute)
	rec := newRecommender(t, external.RecommendationResponse{Replicas: testenv.Ptr(int32(2)), Timestamp: &old})
	e.startAgent(fastResync)
	e.dpa("shop", "web", "web", map[string]string{
		v1alpha2.CustomRecommenderAnnotation: fmt.Sprintf(`{"endpoint": %q}`, rec.URL+"/recommend"),
	}, map[string]any{"spec.applyPolicy.scaleDown.stabilizationWindowSeconds": int64(0)})

	// Stale (20 min > 600 s): local, scale-up allowed by the default direction.
	e.waitReplicas("shop", "web", 4)
	dpa := e.waitHorizontalTarget("shop", "web", v1alpha2.DatadogPodAutoscalerLocalValueSource, 4)
	c := meta.FindStatusCondition(dpa.Status.Conditions, v1alpha2.ConditionHorizontalAbleToRecommend)
	assert.Equal(t, "LocalFallback", c.Reason)
	assert.Contains(t, c.Message, "is older than 10m0s")

	// Fresh: back to the external value.
	rec.mu.Lock()
	rec.answer = external.RecommendationResponse{Replicas: testenv.Ptr(int32(3))}
	rec.mu.Unlock()
	e.waitHorizontalTarget("shop", "web", v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, 3)
	e.waitReplicas("shop", "web", 3)

	// Stale again with low usage: local wants 1, but the default direction is ScaleUp.
	m.setUsage("shop", "20m", "200Mi", pods...)
	rec.mu.Lock()
	rec.answer = external.RecommendationResponse{Replicas: testenv.Ptr(int32(3)), Timestamp: &old}
	rec.mu.Unlock()
	e.waitHorizontalTarget("shop", "web", v1alpha2.DatadogPodAutoscalerLocalValueSource, 1)
	limited := e.waitCondition("shop", "web", v1alpha2.ConditionHorizontalScalingLimited, metav1.ConditionTrue)
	assert.Contains(t, limited.Message, "fallback.horizontal.direction is ScaleUp")
	assert.Equal(t, int32(3), e.replicas("shop", "web"), "no local scale-down with direction ScaleUp")

	// Direction All: the local scale-down happens.
	e.patchDPA("shop", "web", `{"spec":{"fallback":{"horizontal":{"enabled":true,"direction":"All"}}}}`)
	e.waitReplicas("shop", "web", 1)
}
