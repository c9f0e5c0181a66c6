package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	autoscalingdef "github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// deployment creates a Deployment whose template has one container "app" with requests.
func (e *env) deployment(ns, name string) *appsv1.Deployment {
	e.T.Helper()
	d := testenv.Deployment(ns, name, nil)
	d.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	created, err := e.Kube.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(e.T, err)
	return created
}

// dpa creates a DPA on a Deployment with annotations and spec fields set by path.
func (e *env) dpa(ns, name, target string, annotations map[string]string, fields map[string]any) {
	e.T.Helper()
	u := testenv.DPA(ns, name, target)
	u.SetAnnotations(annotations)
	for path, v := range fields {
		require.NoError(e.T, unstructured.SetNestedField(u.Object, v, splitPath(path)...))
	}
	_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
	require.NoError(e.T, err)
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := range len(p) {
		if p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

func (e *env) getDPA(ns, name string) *v1alpha2.DatadogPodAutoscaler {
	e.T.Helper()
	u, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(e.T, err)
	dpa := &v1alpha2.DatadogPodAutoscaler{}
	require.NoError(e.T, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, dpa))
	return dpa
}

// waitCondition waits until the DPA has the condition with the status and returns it.
func (e *env) waitCondition(ns, name, typ string, status metav1.ConditionStatus) *v1alpha2.DatadogPodAutoscalerCondition {
	e.T.Helper()
	var c *v1alpha2.DatadogPodAutoscalerCondition
	require.Eventually(e.T, func() bool {
		c = v1alpha2.FindCondition(e.getDPA(ns, name).Status.Conditions, typ)
		return c != nil && c.Status == status
	}, waitFor, 100*time.Millisecond, "DPA %s/%s never had %s=%s: %v", ns, name, typ, status, dpaState{e, ns, name})
	return c
}

// events returns the events about an object with a reason.
func (e *env) events(ns, object, reason string) []corev1.Event {
	e.T.Helper()
	list, err := e.Kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(e.T, err)
	var out []corev1.Event
	for _, ev := range list.Items {
		if ev.InvolvedObject.Name == object && ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

// recommender is a real HTTP external recommender that answers fixed container resources and
// records what it was asked.
type recommender struct {
	*httptest.Server
	mu       sync.Mutex
	requests []external.RecommendationRequest
	answer   external.RecommendationResponse
}

func newRecommender(t *testing.T, answer external.RecommendationResponse) *recommender {
	r := &recommender{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var in external.RecommendationRequest
		if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.requests = append(r.requests, in)
		out := r.answer
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// firstRequest is the first request received, and how many were.
func (r *recommender) firstRequest() (external.RecommendationRequest, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.requests) == 0 {
		return external.RecommendationRequest{}, 0
	}
	return r.requests[0], len(r.requests)
}

func containerAnswer(cpu, memory string) external.RecommendationResponse {
	return external.RecommendationResponse{Containers: []autoscalingdef.ContainerResources{{Name: "app",
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}}}}
}

// External recommender → DPA status has the vertical target → the Deployment's pod template
// gets rolloutAt + rec-id → the Deployment controller replaces the pods, and the webhook gives
// the new ones the recommended resources and both annotations; the sidecar is left alone.
func TestVerticalEndToEndWithExternalRecommender(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	e.runningDeployment(ns, "web", 2, corev1.Container{Name: "sidecar", Image: "registry.example/sidecar:1"})
	rec := newRecommender(t, containerAnswer("400m", "300Mi"))
	a := e.startAgent(allowLoopbackRecommenders)
	e.dpa(ns, "web", "web", map[string]string{
		v1alpha2.CustomRecommenderAnnotation: fmt.Sprintf(`{"endpoint": %q, "settings": {"model": "p95"}}`, rec.URL+"/recommend"),
	}, rolloutOnly)

	// The status carries the recommendation, from the external source.
	e.waitCondition(ns, "web", v1alpha2.ConditionVerticalAbleToRecommend, metav1.ConditionTrue)
	target := e.waitVerticalTarget(ns, "web")
	dpa := e.getDPA(ns, "web")
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, target.Source)
	require.Len(t, target.DesiredResources, 1)
	assert.Equal(t, "400m", ptrQ(target.DesiredResources[0].Requests.Cpu()))
	assert.Equal(t, "300Mi", ptrQ(target.DesiredResources[0].Requests.Memory()))
	assert.True(t, v1alpha2.IsConditionTrue(dpa.Status.Conditions, v1alpha2.ConditionActive))

	// What the recommender was asked first, before the rollout surged the replicas.
	req, n := rec.firstRequest()
	require.Positive(t, n)
	assert.Equal(t, "web", req.Autoscaler.Name)
	assert.Equal(t, "Deployment", req.Target.Kind)
	assert.Equal(t, int32(2), req.CurrentReplicas)
	assert.JSONEq(t, `{"model": "p95"}`, string(req.Settings))
	require.Len(t, req.Containers, 2)
	assert.Equal(t, "100m", ptrQ(req.Containers[0].Requests.Cpu()))

	// What the user sees: both pods replaced, running with the recommendation. The memory
	// limit keeps its ratio to the request: 256Mi × 300/128 = 600Mi.
	pods := e.waitPodsRunWith(ns, "web", 2, hasResources("app", target.Version, "400m", "300Mi", "600Mi"))
	for _, p := range pods {
		assert.Equal(t, ns+"/web", p.Annotations[v1alpha2.AutoscalerIDAnnotation])
		assert.Empty(t, p.Spec.Containers[1].Resources.Requests, "the sidecar had no recommendation")
	}
	d, err := e.Kube.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, target.Version, d.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation])
	assert.NotEmpty(t, d.Spec.Template.Annotations[v1alpha2.RolloutAtAnnotation])
	e.exactlyOneRollout(ns, "web")
	require.Eventually(t, func() bool { c := e.getDPA(ns, "web").Status.CurrentReplicas; return c != nil && *c == 2 },
		waitFor, 100*time.Millisecond, "status.currentReplicas never back to 2 after the rollout")
	e.waitCondition(ns, "web", v1alpha2.ConditionVerticalAbleToApply, metav1.ConditionTrue)
	require.Eventually(t, func() bool {
		last := e.getDPA(ns, "web").Status.Vertical.LastAction
		return last != nil && last.Type == "RolloutTriggered" && last.Version == target.Version
	}, waitFor, 100*time.Millisecond, "status.vertical.lastAction never recorded the rollout")

	// The leader reports the first pod patched with the recommendation, once: one event per
	// recommendation, not one per pod, naming a pod that runs it.
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	var applied []corev1.Event
	require.Eventually(t, func() bool {
		applied = e.events(ns, "web", "RecommendationApplied")
		return len(applied) > 0
	}, waitFor, 100*time.Millisecond, "no RecommendationApplied event")
	require.Len(t, applied, 1, "one RecommendationApplied event per recommendation")
	assert.EqualValues(t, 1, applied[0].Count, "the event was sent once, not once per pod")
	first, ok := strings.CutSuffix(strings.TrimPrefix(applied[0].Message, "pod "), " is the first created with recommendation "+target.Version)
	require.True(t, ok, "message %q", applied[0].Message)
	assert.True(t, names[first], "the event names pod %s, not one of %v", first, names)
	assert.Equal(t, "running", string(a.statusDoc().Autoscaling.State))
}

// ptrQ renders a quantity.
func ptrQ(q *resource.Quantity) string { return q.String() }

// force-resources is clamped by the constraints and the pods run clamped; Preview and
// update.strategy Disabled never write the workload; pause stops everything: their pods,
// recreated, are not patched (Disabled too, as with the Cluster Agent).
func TestManualResourcesPreviewAndPause(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	for _, name := range []string{"clamped", "preview", "paused", "disabled"} {
		e.runningDeployment(ns, name, 1)
	}
	e.startAgent(nil)
	force := `[{"name": "app", "requests": {"cpu": "4", "memory": "64Mi"}}]`
	constraints := map[string]any{"containers": []any{map[string]any{"name": "*",
		"minAllowed": map[string]any{"memory": "128Mi"}, "maxAllowed": map[string]any{"cpu": "1"}}}}
	e.dpa(ns, "clamped", "clamped", map[string]string{v1alpha2.ForceResourcesAnnotation: force}, map[string]any{"spec.constraints": constraints})
	e.dpa(ns, "preview", "preview", map[string]string{v1alpha2.ForceResourcesAnnotation: force}, map[string]any{"spec.applyPolicy.mode": "Preview"})
	e.dpa(ns, "paused", "paused", map[string]string{v1alpha2.ForceResourcesAnnotation: force, v1alpha2.PauseAnnotation: "true"}, nil)
	e.dpa(ns, "disabled", "disabled", map[string]string{v1alpha2.ForceResourcesAnnotation: force}, map[string]any{"spec.applyPolicy.update.strategy": "Disabled"})

	limited := e.waitCondition(ns, "clamped", v1alpha2.ConditionVerticalScalingLimited, metav1.ConditionTrue)
	assert.Equal(t, "ForcedByAnnotation", limited.Reason)
	assert.True(t, strings.HasPrefix(limited.Message, "resources overridden for containers app by the autoscaling.datadoghq.com/force-resources annotation; "),
		"worded as the Cluster Agent words it: %s", limited.Message)
	assert.Contains(t, limited.Message, "maxAllowed 1")
	assert.Contains(t, limited.Message, "minAllowed 128Mi")
	target := e.getDPA(ns, "clamped").Status.Vertical.Target
	d := target.DesiredResources[0]
	assert.Equal(t, "1", ptrQ(d.Requests.Cpu()))
	assert.Equal(t, "128Mi", ptrQ(d.Requests.Memory()))
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerManualValueSource, target.Source)
	e.waitPodsRunWith(ns, "clamped", 1, hasResources("app", target.Version, "1", "128Mi", "256Mi"))

	applied := e.waitCondition(ns, "preview", v1alpha2.ConditionVerticalAbleToApply, metav1.ConditionFalse)
	assert.Equal(t, "PreviewMode", applied.Reason)
	require.NotNil(t, e.getDPA(ns, "preview").Status.Vertical.Target, "Preview records the recommendation")
	active := e.waitCondition(ns, "paused", v1alpha2.ConditionActive, metav1.ConditionFalse)
	assert.Equal(t, "LocallyPaused", active.Reason)
	assert.Equal(t, "Autoscaling locally paused by the autoscaling.datadoghq.com/pause annotation", active.Message, "as the Cluster Agent words it: kubectl-datadog reads it back")
	disabled := e.waitCondition(ns, "disabled", v1alpha2.ConditionVerticalAbleToApply, metav1.ConditionFalse)
	assert.Contains(t, disabled.Message, "new pods are not patched")

	// The clamped one was rolled out: the controller has had its passes over all three.
	for _, name := range []string{"preview", "paused", "disabled"} {
		dep, err := e.Kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, dep.Spec.Template.Annotations, "%s: the workload is never written", name)
		assert.Equal(t, int64(1), dep.Generation, "%s: the workload is never written", name)
		// The ReplicaSet replaces a deleted pod: the webhook leaves the new one alone.
		old := e.RunningPods(ns, name)[0]
		require.NoError(t, e.Kube.CoreV1().Pods(ns).Delete(context.Background(), old.Name, metav1.DeleteOptions{}))
		pods := e.waitPodsRunWith(ns, name, 1, func(p corev1.Pod) string {
			if p.Name == old.Name {
				return "not replaced yet"
			}
			return ""
		})
		assert.Empty(t, pods[0].Annotations[v1alpha2.AutoscalerIDAnnotation], "%s: pods are not patched", name)
		assert.Equal(t, "100m", ptrQ(pods[0].Spec.Containers[0].Resources.Requests.Cpu()))
	}
	assert.Nil(t, e.getDPA(ns, "paused").Status.Vertical, "a paused DPA gets no recommendation")
}

// Invalid specs each produce the Error condition with a useful message, and no action.
func TestInvalidSpecsGetErrorCondition(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	e.deployment("shop", "web")
	e.deployment("shop", "api")
	e.deployment("lazyscale", "lazyscale")
	ds := testenv.Deployment("shop", "agent", nil)
	_, err := e.Kube.AppsV1().DaemonSets("shop").Create(context.Background(), &appsv1.DaemonSet{ObjectMeta: ds.ObjectMeta,
		Spec: appsv1.DaemonSetSpec{Selector: ds.Spec.Selector, Template: ds.Spec.Template}}, metav1.CreateOptions{})
	require.NoError(t, err)
	e.startAgent(fastResync) // the HPA is not watched: its removal is seen at the next resync
	// DPAs created in the same second are ordered by name: "first" is older than "second".
	e.dpa("shop", "first", "web", nil, nil)
	tests := []struct {
		ns, name, target string
		fields           map[string]any
		reason, message  string
	}{
		{"shop", "missing", "nope", nil, "TargetNotFound", "Deployment nope not found in namespace shop"},
		{"shop", "kind", "agent", map[string]any{"spec.targetRef.kind": "DaemonSet"}, "InvalidSpec", "DaemonSet agent has no /scale subresource"},
		{"shop", "unserved", "w", map[string]any{"spec.targetRef.kind": "Gadget", "spec.targetRef.apiVersion": "example.com/v1"}, "InvalidSpec", "kind Gadget of apiVersion \"example.com/v1\" is not served"},
		{"lazyscale", "self", "lazyscale", nil, "NamespaceSkipped", "namespace lazyscale is never sent to lazyscale's webhook"},
		{"kube-system", "system", "coredns", nil, "NamespaceSkipped", "namespace kube-system is never sent to lazyscale's webhook"},
		{"shop", "second", "web", nil, "TargetAlreadyAutoscaled", "already autoscaled by the older DPA first"},
		// Accepted by the schema (as by the Datadog API's), refused by the controller.
		{"shop", "bounds", "w", map[string]any{"spec.constraints": map[string]any{"minReplicas": int64(5), "maxReplicas": int64(2)}},
			"InvalidSpec", "minReplicas 5 is above maxReplicas 2"},
		{"shop", "novalue", "w", map[string]any{"spec.objectives": []any{map[string]any{"type": "PodResource",
			"podResource": map[string]any{"name": "cpu", "value": map[string]any{"type": "Utilization"}}}}},
			"InvalidSpec", "needs utilization of at least 1"},
		{"shop", "objective", "api", map[string]any{"spec.objectives": []any{map[string]any{"type": "ContainerResource",
			"containerResource": map[string]any{"name": "cpu", "container": "proxy", "value": map[string]any{"type": "Utilization", "utilization": int64(50)}}}}},
			"InvalidSpec", `objectives[0]: container "proxy" is not in Deployment api`},
	}
	for _, tt := range tests {
		e.dpa(tt.ns, tt.name, tt.target, nil, tt.fields)
	}
	for _, tt := range tests {
		c := e.waitCondition(tt.ns, tt.name, v1alpha2.ConditionError, metav1.ConditionTrue)
		assert.Equal(t, tt.reason, c.Reason, tt.name)
		assert.Contains(t, c.Message, tt.message, tt.name)
		assert.False(t, v1alpha2.IsConditionTrue(e.getDPA(tt.ns, tt.name).Status.Conditions, v1alpha2.ConditionActive), tt.name)
	}

	assert.Empty(t, e.LazyscaleRequests("deployments", "patch"), "no action on invalid DPAs")

	// A HorizontalPodAutoscaler scales the target too: an Error, and no horizontal action.
	e.deployment("shop", "hpa")
	_, err = e.Kube.AutoscalingV2().HorizontalPodAutoscalers("shop").Create(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "hpa"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 3,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "hpa"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	e.dpa("shop", "hpa", "hpa", map[string]string{v1alpha2.ForceReplicasAnnotation: "4"}, nil)
	c := e.waitCondition("shop", "hpa", v1alpha2.ConditionError, metav1.ConditionTrue)
	assert.Equal(t, "ConflictingHorizontalPodAutoscaler", c.Reason)
	assert.Contains(t, c.Message, "HorizontalPodAutoscaler hpa also scales Deployment hpa")
	assert.Empty(t, e.LazyscaleRequests("deployments", "update"), "no /scale write")
	assert.Equal(t, int32(1), e.replicas("shop", "hpa"))

	// The HPA goes: the DPA scales.
	require.NoError(t, e.Kube.AutoscalingV2().HorizontalPodAutoscalers("shop").Delete(context.Background(), "hpa", metav1.DeleteOptions{}))
	e.waitReplicas("shop", "hpa", 4)
	e.waitCondition("shop", "hpa", v1alpha2.ConditionError, metav1.ConditionFalse)
}

// Beyond autoscaling.workload.limit the newest DPAs are not active (oldest first; same-second
// DPAs by name).
func TestActiveLimit(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	e.deployment("shop", "web")
	e.deployment("shop", "api")
	e.startAgent(map[string]string{"autoscaling.workload.limit": "1"})
	e.dpa("shop", "a-first", "web", nil, nil)
	e.dpa("shop", "b-second", "api", nil, nil)
	c := e.waitCondition("shop", "b-second", v1alpha2.ConditionError, metav1.ConditionTrue)
	assert.Equal(t, "LimitReached", c.Reason)
	assert.Contains(t, c.Message, "autoscaling.workload.limit is 1")
	e.waitCondition("shop", "a-first", v1alpha2.ConditionActive, metav1.ConditionTrue)

	// The older one goes away: the other becomes active.
	require.NoError(t, e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Delete(context.Background(), "a-first", metav1.DeleteOptions{}))
	e.waitCondition("shop", "b-second", v1alpha2.ConditionActive, metav1.ConditionTrue)
}

// A StatefulSet is its pods' direct owner: its template is rolled out, the StatefulSet
// controller replaces its pods one by one, and the new ones run with the recommendation.
func TestVerticalStatefulSet(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	ctx := context.Background()
	sts := testenv.StatefulSet(ns, "db", nil)
	sts.Spec.Replicas = testenv.Ptr(int32(2))
	sts.Spec.Template.Spec.Containers[0].Resources = *appResources.DeepCopy()
	_, err := e.Kube.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{})
	require.NoError(t, err)
	e.waitRunning(ns, "db", 2)
	e.startAgent(nil)
	e.dpa(ns, "db", "db", map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "750m"}}]`},
		map[string]any{"spec.targetRef.kind": "StatefulSet", "spec.applyPolicy.update.strategy": "TriggerRollout"})

	target := e.waitVerticalTarget(ns, "db")
	for _, p := range e.waitPodsRunWith(ns, "db", 2, hasResources("app", target.Version, "750m", "128Mi", "256Mi")) {
		assert.Equal(t, ns+"/db", p.Annotations[v1alpha2.AutoscalerIDAnnotation])
	}
	s, err := e.Kube.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, target.Version, s.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation])
	e.exactlyOneRollout(ns, "db")
}

// Horizontal scaling through the /scale subresource. A recommendation is clamped to
// maxReplicas; force-replicas is not (it pins the count, as in the Cluster Agent), and it
// scales a Deployment up from zero; each action is recorded and the new pods run; Preview
// is never scaled.
func TestHorizontalThroughScale(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	for name, n := range map[string]int32{"web": 2, "pinned": 2, "api": 1, "idle": 0} {
		e.runningDeployment(ns, name, n)
	}
	e.startAgent(allowLoopbackRecommenders)
	rec := newReplicaRecommender(t, time.Now, 6)
	bounds := map[string]any{"minReplicas": int64(1), "maxReplicas": int64(5)}
	e.dpa(ns, "web", "web", map[string]string{v1alpha2.CustomRecommenderAnnotation: rec.annotation()}, map[string]any{"spec.constraints": bounds})
	e.dpa(ns, "pinned", "pinned", map[string]string{v1alpha2.ForceReplicasAnnotation: "6"}, map[string]any{"spec.constraints": bounds})
	e.dpa(ns, "api", "api", map[string]string{v1alpha2.ForceReplicasAnnotation: "3"}, map[string]any{"spec.applyPolicy.mode": "Preview"})
	e.dpa(ns, "idle", "idle", map[string]string{v1alpha2.ForceReplicasAnnotation: "3"}, nil)

	e.waitReplicas(ns, "web", 5) // maxReplicas
	e.waitRunning(ns, "web", 5)
	limited := e.waitCondition(ns, "web", v1alpha2.ConditionHorizontalScalingLimited, metav1.ConditionTrue)
	assert.Contains(t, limited.Message, "above maxReplicas 5")
	var status *v1alpha2.DatadogPodAutoscalerHorizontalStatus
	require.Eventually(t, func() bool {
		status = e.getDPA(ns, "web").Status.Horizontal
		return status != nil && len(status.LastActions) == 1
	}, waitFor, 100*time.Millisecond)
	act := status.LastActions[0]
	assert.Equal(t, int32(2), act.FromReplicas)
	assert.Equal(t, int32(5), act.ToReplicas)
	assert.Equal(t, int32(6), *act.RecommendedReplicas)
	assert.Contains(t, *act.LimitedReason, "maxReplicas")
	assert.Equal(t, int32(6), status.Target.DesiredReplicas)
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, status.Target.Source)
	assert.Len(t, e.events(ns, "web", "SuccessfulScale"), 1)

	// force-replicas: 6 pods run although maxReplicas is 5, reached in one step; the
	// condition says so in the Cluster Agent's words.
	e.waitReplicas(ns, "pinned", 6)
	e.waitRunning(ns, "pinned", 6)
	pinned := e.waitCondition(ns, "pinned", v1alpha2.ConditionHorizontalScalingLimited, metav1.ConditionTrue)
	assert.Equal(t, "ForcedByAnnotation", pinned.Reason)
	assert.Equal(t, "replica count pinned to 6 by the autoscaling.datadoghq.com/force-replicas annotation", pinned.Message)
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerManualValueSource, e.getDPA(ns, "pinned").Status.Horizontal.Target.Source)
	// and from zero.
	e.waitReplicas(ns, "idle", 3)
	e.waitRunning(ns, "idle", 3)

	preview := e.waitCondition(ns, "api", v1alpha2.ConditionHorizontalAbleToScale, metav1.ConditionFalse)
	assert.Equal(t, "PreviewMode", preview.Reason)
	assert.Equal(t, int32(1), e.replicas(ns, "api"), "Preview is never scaled")
	assert.Len(t, e.RunningPods(ns, "api"), 1)
	assert.Len(t, e.LazyscaleRequests("deployments", "update"), 3, "one /scale write per scaled DPA")
}
