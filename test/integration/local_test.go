package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// fastResync makes the controller look at each DPA every 2 s (sources' answers are reused
// for 1 s), so a test sees several local samples quickly.
var fastResync = map[string]string{"autoscaling.workload.resync_period": "2s"}

func (e *env) replicas(ns, name string) int32 {
	e.T.Helper()
	d, err := e.Kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(e.T, err)
	return *d.Spec.Replicas
}

func (e *env) waitReplicas(ns, name string, n int32) {
	e.T.Helper()
	var has int32
	ok := assert.Eventually(e.T, func() bool { has = e.replicas(ns, name); return has == n }, waitFor, 100*time.Millisecond)
	if !ok {
		require.FailNow(e.T, fmt.Sprintf("%s/%s never had %d replicas (has %d)", ns, name, n, has), "%v", dpaState{e, ns, name})
	}
}

// waitHorizontalTarget waits until the DPA's horizontal target comes from source with n
// replicas.
func (e *env) waitHorizontalTarget(ns, name string, source v1alpha2.DatadogPodAutoscalerValueSource, n int32) *v1alpha2.DatadogPodAutoscaler {
	e.T.Helper()
	return e.waitHorizontalTargetIn(ns, name, source, n, n)
}

// waitHorizontalTargetIn waits until the DPA's horizontal target comes from source with
// lowest to highest replicas. Simulated usage is per pod, not a load the replicas share: a
// local recommendation keeps growing with the count, and metrics-server's CPU rates are
// within a few percent of what was set.
func (e *env) waitHorizontalTargetIn(ns, name string, source v1alpha2.DatadogPodAutoscalerValueSource, lowest, highest int32) *v1alpha2.DatadogPodAutoscaler {
	e.T.Helper()
	var dpa *v1alpha2.DatadogPodAutoscaler
	ok := assert.Eventually(e.T, func() bool {
		dpa = e.getDPA(ns, name)
		h := dpa.Status.Horizontal
		return h != nil && h.Target != nil && h.Target.Source == source && h.Target.DesiredReplicas >= lowest && h.Target.DesiredReplicas <= highest
	}, waitFor, 100*time.Millisecond)
	if !ok {
		require.FailNow(e.T, fmt.Sprintf("DPA %s/%s never had a %s target of %d to %d", ns, name, source, lowest, highest), "%v", dpaState{e, ns, name})
	}
	return dpa
}

func (e *env) patchDPA(ns, name, patch string) {
	e.T.Helper()
	_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(e.T, err)
}

// horizontalOnly turns the vertical recommendation off: it would change the requests that
// the utilization is measured against.
var horizontalOnly = []any{map[string]any{"name": "*", "enabled": false}}

// The local recommender, reading PodMetrics through the apiserver's aggregation layer from
// metrics-server, which scrapes the usage kwok simulates: usage above the target scales up and
// the new pods run; usage within the tolerance changes nothing; an OOM kill bumps the memory
// recommendation.
func TestLocalRecommender(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	e.runningDeployment(ns, "web", 3)
	e.runningDeployment(ns, "api", 2)
	e.SetUsage(ns, "web", "130m", "200Mi") // 130 % of the 100m requests, against 70 %
	e.SetUsage(ns, "api", "72m", "200Mi")  // 72 %: within the 10 % tolerance
	e.startAgent(fastResync)
	e.dpa(ns, "web", "web", nil, map[string]any{"spec.constraints.containers": horizontalOnly, "spec.constraints.maxReplicas": int64(6)})
	// Preview: recommendations only, so that a vertical rollout does not move api's
	// utilization out of the tolerance.
	e.dpa(ns, "api", "api", nil, map[string]any{"spec.applyPolicy.mode": "Preview"})

	// web: ceil(3 x 130/70) = 6 (the default scale-up rules allow +4 or +100 % per 15 s), and
	// the usage does not fall as replicas are added: at maxReplicas it stays.
	e.waitReplicas(ns, "web", 6)
	e.waitRunning(ns, "web", 6)
	dpa := e.waitHorizontalTargetIn(ns, "web", v1alpha2.DatadogPodAutoscalerLocalValueSource, 6, 100)
	c := v1alpha2.FindCondition(dpa.Status.Conditions, v1alpha2.ConditionHorizontalAbleToRecommend)
	require.NotNil(t, c)
	assert.Equal(t, "LocalFallback", c.Reason)
	assert.Contains(t, c.Message, "no external recommendation")
	assert.Len(t, dpa.Status.Horizontal.LastActions, 1)
	var selectors []string
	for _, r := range e.LazyscaleRequests("pods.metrics.k8s.io", "list") {
		selectors = append(selectors, r.RequestURI)
	}
	assert.Contains(t, strings.Join(selectors, " "), "labelSelector=app%3Dweb", "PodMetrics listed with the Deployment's selector")

	// api: within tolerance, the count stays.
	dpa = e.waitHorizontalTarget(ns, "api", v1alpha2.DatadogPodAutoscalerLocalValueSource, 2)
	assert.Empty(t, dpa.Status.Horizontal.LastActions)
	assert.Equal(t, int32(2), e.replicas(ns, "api"))

	// Vertical: the usage histograms give app ~ p95(200Mi) + 10 %.
	memory := func() float64 {
		v := e.getDPA(ns, "api").Status.Vertical
		if v == nil || v.Target == nil || v.Target.Source != v1alpha2.DatadogPodAutoscalerLocalValueSource {
			return 0
		}
		for _, c := range v.Target.DesiredResources {
			if c.Name == "app" {
				return c.Requests.Memory().AsApproximateFloat64()
			}
		}
		return 0
	}
	var before float64
	require.Eventually(t, func() bool { before = memory(); return before > 0 }, waitFor, 100*time.Millisecond, "no local vertical recommendation")
	assert.InDelta(t, 220<<20, before, 220<<20*0.06)

	// An OOM kill of app in one api pod (as the kubelet reports it): the 256Mi limit joins the
	// samples and memory is x1.2.
	pod := e.RunningPods(ns, "api")[0]
	oom := fmt.Sprintf(`{"status":{"containerStatuses":[{"name":"app","restartCount":1,"lastState":{"terminated":{"reason":"OOMKilled","exitCode":137,"finishedAt":%q}}}]}}`,
		time.Now().Add(-time.Second).UTC().Format(time.RFC3339))
	_, err := e.Kube.CoreV1().Pods(ns).Patch(context.Background(), pod.Name, types.StrategicMergePatchType, []byte(oom), metav1.PatchOptions{}, "status")
	require.NoError(t, err)
	var after float64
	require.Eventually(t, func() bool { after = memory(); return after >= 256*1.1*1.2*0.95*(1<<20) },
		waitFor, 100*time.Millisecond, "memory never bumped after the OOM kill (%.0f -> %.0f)", before, after)
}

// Fallback: a stale external recommendation switches the horizontal source to local, a fresh
// one switches it back, and the fallback direction holds.
func TestFallbackToLocal(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	e.runningDeployment(ns, "web", 2)
	e.SetUsage(ns, "web", "130m", "200Mi") // local: ceil(2 x 130/70) = 4, and more once 4 run
	old := time.Now().Add(-20 * time.Minute)
	rec := newRecommender(t, external.RecommendationResponse{Replicas: testenv.Ptr(int32(2)), Timestamp: &old})
	e.startAgent(withOverrides(fastResync, allowLoopbackRecommenders))
	e.dpa(ns, "web", "web", map[string]string{
		v1alpha2.CustomRecommenderAnnotation: fmt.Sprintf(`{"endpoint": %q}`, rec.URL+"/recommend"),
	}, map[string]any{"spec.applyPolicy.scaleDown.stabilizationWindowSeconds": int64(0), "spec.constraints.containers": horizontalOnly,
		"spec.constraints.maxReplicas": int64(4)})

	// Stale (20 min > 600 s): local, scale-up allowed by the default direction.
	e.waitReplicas(ns, "web", 4)
	dpa := e.waitHorizontalTargetIn(ns, "web", v1alpha2.DatadogPodAutoscalerLocalValueSource, 4, 100)
	c := v1alpha2.FindCondition(dpa.Status.Conditions, v1alpha2.ConditionHorizontalAbleToRecommend)
	assert.Equal(t, "LocalFallback", c.Reason)
	assert.Contains(t, c.Message, "is older than 10m0s")
	e.waitRunning(ns, "web", 4)

	// Fresh: back to the external value.
	rec.mu.Lock()
	rec.answer = external.RecommendationResponse{Replicas: testenv.Ptr(int32(3))}
	rec.mu.Unlock()
	e.waitHorizontalTarget(ns, "web", v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, 3)
	e.waitReplicas(ns, "web", 3)
	e.waitRunning(ns, "web", 3)

	// Stale again with low usage (once metrics-server shows it): local wants 1, but the
	// default direction is ScaleUp.
	e.SetUsage(ns, "web", "20m", "200Mi")
	e.WaitCPUUsage(ns, "app=web", "20m")
	rec.mu.Lock()
	rec.answer = external.RecommendationResponse{Replicas: testenv.Ptr(int32(3)), Timestamp: &old}
	rec.mu.Unlock()
	e.waitHorizontalTarget(ns, "web", v1alpha2.DatadogPodAutoscalerLocalValueSource, 1)
	limited := e.waitCondition(ns, "web", v1alpha2.ConditionHorizontalScalingLimited, metav1.ConditionTrue)
	assert.Contains(t, limited.Message, "fallback.horizontal.direction is ScaleUp")
	assert.Equal(t, int32(3), e.replicas(ns, "web"), "no local scale-down with direction ScaleUp")

	// Direction All: the local scale-down happens.
	e.patchDPA(ns, "web", `{"spec":{"fallback":{"horizontal":{"enabled":true,"direction":"All"}}}}`)
	e.waitReplicas(ns, "web", 1)
	e.waitRunning(ns, "web", 1)
}
