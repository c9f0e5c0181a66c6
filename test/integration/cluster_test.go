package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// newClusterEnv is a control plane that runs workloads: the controller-manager, the scheduler
// and kwok with nodes nodes.
func newClusterEnv(t *testing.T, nodes int) *env {
	return &env{testenv.NewEnvWith(t, controlplane.Options{InstallCRDs: true, Nodes: nodes})}
}

// runningDeployment creates a Deployment of replicas pods (app: 100m CPU, 128Mi, a 256Mi
// limit) and waits until they all run.
func (e *env) runningDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	e.T.Helper()
	d := testenv.Deployment(ns, name, nil)
	d.Spec.Replicas = &replicas
	d.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	d, err := e.Kube.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(e.T, err)
	require.Eventually(e.T, func() bool { return len(e.runningPods(ns, name)) == int(replicas) }, waitFor, 200*time.Millisecond,
		"%d pods of %s never ran", replicas, name)
	return d
}

// runningPods are the Deployment's pods that run and are not going away.
func (e *env) runningPods(ns, app string) []corev1.Pod {
	e.T.Helper()
	list, err := e.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
	require.NoError(e.T, err)
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
			out = append(out, p)
		}
	}
	return out
}

// What a user sees: a Deployment running on nodes gets a DPA, and its pods are replaced by the
// Deployment controller, once, and run with the recommended resources and the rec-id.
func TestVerticalRolloutOnARealCluster(t *testing.T) {
	e := newClusterEnv(t, 2)
	e.Namespace("shop", nil)
	e.runningDeployment("shop", "web", 3)
	a := e.startAgent(nil)
	e.dpa("shop", "web", "web", map[string]string{
		v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m", "memory": "200Mi"}}]`,
	}, nil)
	a.waitGate()

	var version string
	require.Eventually(t, func() bool {
		dpa := e.getDPA("shop", "web")
		if dpa.Status.Vertical == nil || dpa.Status.Vertical.Target == nil {
			return false
		}
		version = dpa.Status.Vertical.Target.Version
		pods := e.runningPods("shop", "web")
		if len(pods) != 3 {
			return false
		}
		for _, p := range pods {
			r := p.Spec.Containers[0].Resources
			if p.Annotations[v1alpha2.RecommendationIDAnnotation] != version || r.Requests.Cpu().String() != "300m" ||
				r.Requests.Memory().String() != "200Mi" || r.Limits.Memory().String() != "400Mi" {
				return false
			}
		}
		return true
	}, waitFor, 250*time.Millisecond, "the pods never ran with the recommendation")
	for _, p := range e.runningPods("shop", "web") {
		assert.Equal(t, "shop/web", p.Annotations[v1alpha2.AutoscalerIDAnnotation], p.Name)
		assert.True(t, isReady(p), "%s ready", p.Name)
	}
	assert.Len(t, e.events("shop", "web", "SuccessfulTriggerRollout"), 1, "exactly one rollout")
	assert.Never(t, func() bool { return len(e.events("shop", "web", "SuccessfulTriggerRollout")) > 1 }, 3*time.Second, 250*time.Millisecond,
		"no second rollout once the pods carry the recommendation")
}

func isReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// What a user sees with the local recommender on a real cluster: metrics-server reports the
// usage kwok simulates; usage up, the Deployment scales out and the new pods run; usage down,
// it scales back in to minReplicas (here with no scale-down window, to keep the test short).
func TestHorizontalFromUsageOnARealCluster(t *testing.T) {
	e := &env{testenv.NewEnvWith(t, controlplane.Options{InstallCRDs: true, Nodes: 2, MetricsServer: true})}
	e.Namespace("shop", nil)
	e.runningDeployment("shop", "web", 2)
	e.SetUsage("shop", "web", "150m", "100Mi") // 150 % of the 100m requests, against a 70 % target
	e.startAgent(fastResync)
	e.dpa("shop", "web", "web", nil, map[string]any{
		"spec.fallback.horizontal.enabled":   true,
		"spec.fallback.horizontal.direction": "All",
		"spec.constraints.minReplicas":       int64(2),
		"spec.constraints.maxReplicas":       int64(6),
		// Horizontal only: a vertical recommendation would change the requests the
		// utilization is measured against.
		"spec.constraints.containers":                           []any{map[string]any{"name": "*", "enabled": false}},
		"spec.applyPolicy.scaleDown.stabilizationWindowSeconds": int64(0),
		"spec.applyPolicy.scaleDown.rules":                      []any{map[string]any{"type": "Percent", "value": int64(100), "periodSeconds": int64(15)}},
	})

	// ceil(2 × 150/70) = 5, within the default scale-up rules (+4 or +100 % per 15 s).
	e.waitReplicas("shop", "web", 5)
	require.Eventually(t, func() bool { return len(e.runningPods("shop", "web")) == 5 }, waitFor, 250*time.Millisecond, "the new pods run")
	dpa := e.waitHorizontalTarget("shop", "web", v1alpha2.DatadogPodAutoscalerLocalValueSource, 5)
	assert.Len(t, dpa.Status.Horizontal.LastActions, 1)

	// 20m: the HPA formula goes down to 1 (pods without a metric yet count as using the
	// target, so it may take a few steps); minReplicas holds it at 2.
	e.SetUsage("shop", "web", "20m", "100Mi")
	require.Eventually(t, func() bool { return e.replicas("shop", "web") == 2 }, waitFor, 250*time.Millisecond,
		"never scaled in: %+v", dpaState{e, "shop", "web"})
	require.Eventually(t, func() bool { return len(e.runningPods("shop", "web")) == 2 }, waitFor, 250*time.Millisecond, "scaled in")
}

// dpaState prints a DPA's horizontal status and conditions when a wait fails.
type dpaState struct {
	e        *env
	ns, name string
}

func (d dpaState) String() string {
	dpa := d.e.getDPA(d.ns, d.name)
	out := fmt.Sprintf("conditions %+v", dpa.Status.Conditions)
	if h := dpa.Status.Horizontal; h != nil {
		if h.Target != nil {
			out += fmt.Sprintf("; target %d from %s", h.Target.DesiredReplicas, h.Target.Source)
		}
		for _, a := range h.LastActions {
			rec := int32(-1)
			if a.RecommendedReplicas != nil {
				rec = *a.RecommendedReplicas
			}
			out += fmt.Sprintf("; %s %d→%d (recommended %d)", a.Time.Format("15:04:05"), a.FromReplicas, a.ToReplicas, rec)
		}
	}
	return out
}
