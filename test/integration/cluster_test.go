package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	autoscalingdef "github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// newClusterEnv is an env on the shared cluster, which runs workloads: the test works in
// namespaces it creates with e.Namespace.
func newClusterEnv(t *testing.T) *env { return &env{cluster.Env(t)} }

// appResources are the requests and limits of the app container of the tests' workloads.
var appResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
	Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
}

// runningDeployment creates a Deployment of replicas pods (app: 100m CPU, 128Mi, a 256Mi
// limit; then the extra containers) and waits until they all run.
func (e *env) runningDeployment(ns, name string, replicas int32, extra ...corev1.Container) *appsv1.Deployment {
	e.T.Helper()
	d := testenv.Deployment(ns, name, nil)
	d.Spec.Replicas = &replicas
	d.Spec.Template.Spec.Containers[0].Resources = *appResources.DeepCopy()
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, extra...)
	d, err := e.Kube.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(e.T, err)
	e.waitRunning(ns, name, int(replicas))
	return d
}

// waitRunning waits until exactly n pods of app run.
func (e *env) waitRunning(ns, app string, n int) {
	e.T.Helper()
	require.Eventually(e.T, func() bool { return len(e.RunningPods(ns, app)) == n }, waitFor, 200*time.Millisecond,
		"%d pods of %s/%s never ran (%d do)", n, ns, app, len(e.RunningPods(ns, app)))
}

// waitPodsRunWith waits until exactly n pods of app run and each passes check (which says
// what is wrong, or ""), and returns them.
func (e *env) waitPodsRunWith(ns, app string, n int, check func(corev1.Pod) string) []corev1.Pod {
	e.T.Helper()
	var pods []corev1.Pod
	var wrong string
	ok := assert.Eventually(e.T, func() bool {
		pods = e.RunningPods(ns, app)
		if len(pods) != n {
			wrong = fmt.Sprintf("%d pods run, want %d", len(pods), n)
			return false
		}
		for _, p := range pods {
			if wrong = check(p); wrong != "" {
				wrong = p.Name + ": " + wrong
				return false
			}
		}
		return true
	}, waitFor, 250*time.Millisecond)
	if !ok {
		require.FailNow(e.T, "the pods of "+ns+"/"+app+" never ran as expected", wrong)
	}
	return pods
}

// hasResources is a waitPodsRunWith check: the container's requests and memory limit, and the
// recommendation's annotations.
func hasResources(container, version, cpu, memory, memoryLimit string) func(corev1.Pod) string {
	return func(p corev1.Pod) string {
		if got := p.Annotations[v1alpha2.RecommendationIDAnnotation]; got != version {
			return fmt.Sprintf("rec-id %q, want %q", got, version)
		}
		for _, c := range autoscalingdef.ScaledContainers(&p.Spec) { // native sidecars too
			if c.Name != container {
				continue
			}
			got := fmt.Sprintf("%s/%s/%s", c.Resources.Requests.Cpu(), c.Resources.Requests.Memory(), c.Resources.Limits.Memory())
			if want := cpu + "/" + memory + "/" + memoryLimit; got != want {
				return "requests/limit " + got + ", want " + want
			}
			return ""
		}
		return "no container " + container
	}
}

// What a user sees: a Deployment running on nodes gets a DPA, and its pods are replaced by the
// Deployment controller, once, and run with the recommended resources and the rec-id.
func TestVerticalRolloutOnARealCluster(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	e.runningDeployment(ns, "web", 3)
	a := e.startAgent(nil)
	e.dpa(ns, "web", "web", map[string]string{
		v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m", "memory": "200Mi"}}]`,
	}, rolloutOnly) // TestInPlaceResize covers the default, Auto
	a.waitGate()

	version := e.waitVerticalTarget(ns, "web").Version
	// The memory limit keeps its ratio to the request: 256Mi × 200/128 = 400Mi.
	for _, p := range e.waitPodsRunWith(ns, "web", 3, hasResources("app", version, "300m", "200Mi", "400Mi")) {
		assert.Equal(t, ns+"/web", p.Annotations[v1alpha2.AutoscalerIDAnnotation], p.Name)
		assert.True(t, isReady(p), "%s ready", p.Name)
	}
	e.exactlyOneRollout(ns, "web")
}

// waitVerticalTarget waits until the DPA has a vertical target and returns it.
func (e *env) waitVerticalTarget(ns, name string) *v1alpha2.DatadogPodAutoscalerVerticalTargetStatus {
	e.T.Helper()
	var target *v1alpha2.DatadogPodAutoscalerVerticalTargetStatus
	require.Eventually(e.T, func() bool {
		if v := e.getDPA(ns, name).Status.Vertical; v != nil {
			target = v.Target
		}
		return target != nil
	}, waitFor, 100*time.Millisecond, "DPA %s/%s never had a vertical target: %v", ns, name, dpaState{e, ns, name})
	return target
}

// rolloutOnly makes a DPA roll its workload out (update.strategy TriggerRollout) instead of
// resizing its pods in place (the default, Auto).
var rolloutOnly = map[string]any{"spec.applyPolicy.update.strategy": "TriggerRollout"}

// exactlyOneRollout checks that the workload was rolled out once, and is not again while the
// controller keeps reconciling (bounded: it proves the absence, it synchronises nothing).
func (e *env) exactlyOneRollout(ns, workload string) {
	e.T.Helper()
	assert.Len(e.T, e.events(ns, workload, "SuccessfulTriggerRollout"), 1, "exactly one rollout")
	assert.Never(e.T, func() bool { return len(e.events(ns, workload, "SuccessfulTriggerRollout")) > 1 }, 3*time.Second, 250*time.Millisecond,
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
// usage kwok simulates for a load the pods share; load up, the Deployment scales out, the new
// pods run and the count settles where the load per pod meets the objective; load down, it
// scales back in to minReplicas, no earlier than the scale-down stabilization window after the
// recommendation fell.
func TestHorizontalFromUsageOnARealCluster(t *testing.T) {
	const window = 30 * time.Second
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	e.runningDeployment(ns, "web", 2)
	e.SetLoad(ns, "web", "300m", "100Mi") // 150m per pod: 150 % of the 100m requests, against a 70 % target
	e.startAgent(fastResync)
	e.dpa(ns, "web", "web", nil, map[string]any{
		"spec.fallback.horizontal.enabled":   true,
		"spec.fallback.horizontal.direction": "All",
		"spec.constraints.minReplicas":       int64(2),
		"spec.constraints.maxReplicas":       int64(6),
		// Horizontal only: a vertical recommendation would change the requests the
		// utilization is measured against.
		"spec.constraints.containers":                           []any{map[string]any{"name": "*", "enabled": false}},
		"spec.applyPolicy.scaleDown.stabilizationWindowSeconds": int64(window / time.Second),
		"spec.applyPolicy.scaleDown.rules":                      []any{map[string]any{"type": "Percent", "value": int64(100), "periodSeconds": int64(15)}},
	})

	// ceil(2 × 150/70) = 5, within the default scale-up rules (+4 or +100 % per 15 s); then
	// 60m per pod, 60 %: ceil(5 × 60/70) = 5, the count holds.
	e.waitReplicas(ns, "web", 5)
	e.waitRunning(ns, "web", 5)
	e.WaitCPUUsage(ns, "app=web", "60m")
	dpa := e.waitHorizontalTarget(ns, "web", v1alpha2.DatadogPodAutoscalerLocalValueSource, 5)
	assert.Len(t, dpa.Status.Horizontal.LastActions, 1)

	// 40m in all: the HPA formula goes down to 1 (pods without a metric yet count as using
	// the target, so it may take a few steps); minReplicas holds it at 2.
	e.SetLoad(ns, "web", "40m", "100Mi")
	var fell time.Time
	require.Eventually(t, func() bool {
		h := e.getDPA(ns, "web").Status.Horizontal
		if fell.IsZero() && h != nil && h.Target != nil && h.Target.DesiredReplicas < 5 {
			fell = time.Now()
		}
		return e.replicas(ns, "web") == 2
	}, waitFor+window, 100*time.Millisecond, "never scaled in: %v", dpaState{e, ns, "web"})
	e.waitRunning(ns, "web", 2)
	actions := e.getDPA(ns, "web").Status.Horizontal.LastActions
	first := actions[1] // the first scale-in, after the scale-out
	require.NotZero(t, fell, "the recommendation was never seen below 5")
	// fell is when the test saw the lower recommendation in the status, which can trail the
	// controller's own record by a reconcile or two (2 s each), and status times have a
	// second's resolution. Without the window the scale-in comes within a few seconds.
	assert.GreaterOrEqual(t, first.Time.Time.Sub(fell), window-5*time.Second,
		"scaled in %s after the recommendation fell, within the %s window: %v", first.Time.Sub(fell), window, dpaState{e, ns, "web"})
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
	if v := dpa.Status.Vertical; v != nil && v.Target != nil {
		out += fmt.Sprintf("; vertical %s from %s:", v.Target.Version, v.Target.Source)
		for _, c := range v.Target.DesiredResources {
			out += fmt.Sprintf(" %s %s/%s", c.Name, c.Requests.Cpu(), c.Requests.Memory())
		}
	}
	return out
}

// podsState prints the running pods of app when a wait fails: rec-id and each container's
// requests.
type podsState struct {
	e       *env
	ns, app string
}

func (p podsState) String() string {
	var out []string
	for _, pod := range p.e.RunningPods(p.ns, p.app) {
		s := pod.Name + " rec-id " + pod.Annotations[v1alpha2.RecommendationIDAnnotation] + ":"
		for _, c := range pod.Spec.Containers {
			s += fmt.Sprintf(" %s %s/%s", c.Name, c.Resources.Requests.Cpu(), c.Resources.Requests.Memory())
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// Native sidecars (init containers with restartPolicy Always) run beside the containers for
// the pod's life: they are scaled like containers. An ordinary init container is not.
func TestNativeSidecarIsScaled(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	ctx := context.Background()
	always := corev1.ContainerRestartPolicyAlways
	small := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}
	d := testenv.Deployment(ns, "web", nil)
	d.Spec.Replicas = testenv.Ptr(int32(2))
	d.Spec.Template.Spec.Containers[0].Resources = *appResources.DeepCopy()
	d.Spec.Template.Spec.InitContainers = []corev1.Container{
		{Name: "migrate", Image: "registry.k8s.io/pause:3.10", Resources: *small.DeepCopy()},
		{Name: "proxy", Image: "registry.k8s.io/pause:3.10", RestartPolicy: &always, Resources: *small.DeepCopy()},
	}
	_, err := e.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	e.waitRunning(ns, "web", 2)
	e.startAgent(nil)
	e.dpa(ns, "web", "web", map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m", "memory": "200Mi"}},
		{"name": "proxy", "requests": {"cpu": "100m", "memory": "96Mi"}}]`},
		map[string]any{"spec.applyPolicy.update.strategy": "TriggerRollout",
			"spec.constraints": map[string]any{"containers": []any{map[string]any{"name": "proxy", "maxAllowed": map[string]any{"memory": "80Mi"}}}}})
	version := e.waitVerticalTarget(ns, "web").Version
	pods := e.waitPodsRunWith(ns, "web", 2, func(p corev1.Pod) string {
		if msg := hasResources("app", version, "300m", "200Mi", "400Mi")(p); msg != "" { // the limit keeps its ratio
			return "app: " + msg
		}
		if msg := hasResources("proxy", version, "100m", "80Mi", "0")(p); msg != "" {
			return "proxy: " + msg
		}
		return ""
	})
	for _, p := range pods {
		assert.Equal(t, "50m", p.Spec.InitContainers[0].Resources.Requests.Cpu().String(), "the ordinary init container is left alone")
	}
	e.exactlyOneRollout(ns, "web")
}
