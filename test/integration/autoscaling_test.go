package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

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

// replicaSet creates the ReplicaSet a Deployment controller would create for hash, as there
// is no controller-manager, and returns the owner reference its pods carry.
func (e *env) replicaSet(d *appsv1.Deployment, hash string) metav1.OwnerReference {
	e.T.Helper()
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-" + hash, Namespace: d.Namespace,
			Labels:          map[string]string{"app": d.Name, "pod-template-hash": hash},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: testenv.Ptr(true)}}},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": d.Name, "pod-template-hash": hash}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": d.Name, "pod-template-hash": hash}},
				Spec: d.Spec.Template.Spec},
		},
	}
	created, err := e.Kube.AppsV1().ReplicaSets(d.Namespace).Create(context.Background(), rs, metav1.CreateOptions{})
	require.NoError(e.T, err)
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: created.Name, UID: created.UID, Controller: testenv.Ptr(true)}
}

// rsPod creates a pod of a ReplicaSet through the apiserver (the webhook sees it) and marks
// it running and ready.
func (e *env) rsPod(d *appsv1.Deployment, owner metav1.OwnerReference, hash, suffix string) *corev1.Pod {
	e.T.Helper()
	p, err := e.CreatePod(d.Namespace, owner.Name+"-"+suffix, map[string]string{"app": d.Name, "pod-template-hash": hash}, owner)
	require.NoError(e.T, err)
	return p
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
func (e *env) waitCondition(ns, name, typ string, status metav1.ConditionStatus) *metav1.Condition {
	e.T.Helper()
	var c *metav1.Condition
	require.Eventually(e.T, func() bool {
		c = meta.FindStatusCondition(e.getDPA(ns, name).Status.Conditions, typ)
		return c != nil && c.Status == status
	}, waitFor, 100*time.Millisecond, "DPA %s/%s never had %s=%s (last: %+v)", ns, name, typ, status, c)
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

func (r *recommender) lastRequest() (external.RecommendationRequest, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.requests) == 0 {
		return external.RecommendationRequest{}, 0
	}
	return r.requests[len(r.requests)-1], len(r.requests)
}

func containerAnswer(cpu, memory string) external.RecommendationResponse {
	return external.RecommendationResponse{Containers: []autoscalingdef.ContainerResources{{Name: "app",
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}}}}
}

// External recommender → DPA status has the vertical target → the Deployment's pod template
// gets rolloutAt + rec-id → a pod created through the apiserver for the new ReplicaSet has the
// recommended resources and both annotations.
func TestVerticalEndToEndWithExternalRecommender(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	web := e.deployment("shop", "web")
	oldRS := e.replicaSet(web, "5d8f7b9c4")
	for i := range 2 {
		e.rsPod(web, oldRS, "5d8f7b9c4", fmt.Sprintf("old%d", i))
	}
	rec := newRecommender(t, containerAnswer("400m", "300Mi"))
	a := e.startAgent(nil)
	e.dpa("shop", "web", "web", map[string]string{
		v1alpha2.CustomRecommenderAnnotation: fmt.Sprintf(`{"endpoint": %q, "settings": {"model": "p95"}}`, rec.URL+"/recommend"),
	}, nil)

	// The status carries the recommendation, from the external source.
	e.waitCondition("shop", "web", v1alpha2.ConditionVerticalAbleToRecommend, metav1.ConditionTrue)
	dpa := e.getDPA("shop", "web")
	require.NotNil(t, dpa.Status.Vertical)
	require.NotNil(t, dpa.Status.Vertical.Target)
	target := dpa.Status.Vertical.Target
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, target.Source)
	require.Len(t, target.DesiredResources, 1)
	assert.Equal(t, "400m", ptrQ(target.DesiredResources[0].Requests.Cpu()))
	assert.Equal(t, "300Mi", ptrQ(target.DesiredResources[0].Requests.Memory()))
	assert.Equal(t, int32(2), *dpa.Status.CurrentReplicas)
	assert.True(t, meta.IsStatusConditionTrue(dpa.Status.Conditions, v1alpha2.ConditionActive))

	// What the recommender was asked.
	req, n := rec.lastRequest()
	require.Positive(t, n)
	assert.Equal(t, "web", req.Autoscaler.Name)
	assert.Equal(t, "Deployment", req.Target.Kind)
	assert.Equal(t, int32(2), req.CurrentReplicas)
	assert.JSONEq(t, `{"model": "p95"}`, string(req.Settings))
	require.Len(t, req.Containers, 1)
	assert.Equal(t, "250m", ptrQ(req.Containers[0].Requests.Cpu()))

	// The pods lack the recommendation: the template gets rolloutAt and rec-id.
	var tmpl map[string]string
	require.Eventually(t, func() bool {
		d, err := e.Kube.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
		require.NoError(t, err)
		tmpl = d.Spec.Template.Annotations
		return tmpl[v1alpha2.RecommendationIDAnnotation] == target.Version
	}, waitFor, 100*time.Millisecond, "the Deployment was never rolled out")
	assert.NotEmpty(t, tmpl[v1alpha2.RolloutAtAnnotation])
	assert.Len(t, e.events("shop", "web", "SuccessfulTriggerRollout"), 1)
	e.waitCondition("shop", "web", v1alpha2.ConditionVerticalAbleToApply, metav1.ConditionTrue)
	require.Eventually(t, func() bool {
		last := e.getDPA("shop", "web").Status.Vertical.LastAction
		return last != nil && last.Type == "RolloutTriggered" && last.Version == target.Version
	}, waitFor, 100*time.Millisecond, "status.vertical.lastAction never recorded the rollout")

	// The Deployment controller would now create a new ReplicaSet: its pods get the
	// recommended resources from the webhook, through the apiserver.
	newRS := e.replicaSet(web, "6f9c8d7b5")
	var pod *corev1.Pod
	i := 0
	require.Eventually(t, func() bool {
		i++
		pod = e.rsPod(web, newRS, "6f9c8d7b5", fmt.Sprintf("new%d", i))
		return pod.Annotations[v1alpha2.RecommendationIDAnnotation] == target.Version
	}, waitFor, 200*time.Millisecond, "no pod got the recommendation")
	assert.Equal(t, "shop/web", pod.Annotations[v1alpha2.AutoscalerIDAnnotation])
	app := pod.Spec.Containers[0]
	assert.Equal(t, "400m", ptrQ(app.Resources.Requests.Cpu()))
	assert.Equal(t, "300Mi", ptrQ(app.Resources.Requests.Memory()))
	// The memory limit keeps its ratio to the request: 512Mi × 300/256 = 600Mi.
	assert.Equal(t, "600Mi", ptrQ(app.Resources.Limits.Memory()))
	assert.Empty(t, pod.Spec.Containers[1].Resources.Requests, "the sidecar had no recommendation")

	// The leader reports the patched pod once.
	require.Eventually(t, func() bool {
		for _, ev := range e.events("shop", "web", "RecommendationApplied") {
			if ev.Message == fmt.Sprintf("pod %s created with recommendation %s", pod.Name, target.Version) {
				return true
			}
		}
		return false
	}, waitFor, 100*time.Millisecond, "no RecommendationApplied event")
	assert.Equal(t, "running", string(a.statusDoc().Autoscaling.State))
}

// ptrQ renders a quantity.
func ptrQ(q *resource.Quantity) string { return q.String() }

// force-resources is clamped by the constraints; Preview never writes the workload; pause
// stops everything.
func TestManualResourcesPreviewAndPause(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	for _, name := range []string{"clamped", "preview", "paused"} {
		d := e.deployment("shop", name)
		rs := e.replicaSet(d, "5d8f7b9c4")
		e.rsPod(d, rs, "5d8f7b9c4", "old")
	}
	e.startAgent(nil)
	force := `[{"name": "app", "requests": {"cpu": "4", "memory": "64Mi"}}]`
	constraints := map[string]any{"containers": []any{map[string]any{"name": "*",
		"minAllowed": map[string]any{"memory": "128Mi"}, "maxAllowed": map[string]any{"cpu": "1"}}}}
	e.dpa("shop", "clamped", "clamped", map[string]string{v1alpha2.ForceResourcesAnnotation: force}, map[string]any{"spec.constraints": constraints})
	e.dpa("shop", "preview", "preview", map[string]string{v1alpha2.ForceResourcesAnnotation: force}, map[string]any{"spec.applyPolicy.mode": "Preview"})
	e.dpa("shop", "paused", "paused", map[string]string{v1alpha2.ForceResourcesAnnotation: force, v1alpha2.PauseAnnotation: "true"}, nil)

	limited := e.waitCondition("shop", "clamped", v1alpha2.ConditionVerticalScalingLimited, metav1.ConditionTrue)
	assert.Contains(t, limited.Message, "maxAllowed 1")
	assert.Contains(t, limited.Message, "minAllowed 128Mi")
	d := e.getDPA("shop", "clamped").Status.Vertical.Target.DesiredResources[0]
	assert.Equal(t, "1", ptrQ(d.Requests.Cpu()))
	assert.Equal(t, "128Mi", ptrQ(d.Requests.Memory()))
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerManualValueSource, e.getDPA("shop", "clamped").Status.Vertical.Target.Source)

	applied := e.waitCondition("shop", "preview", v1alpha2.ConditionVerticalAbleToApply, metav1.ConditionFalse)
	assert.Equal(t, "PreviewMode", applied.Reason)
	require.NotNil(t, e.getDPA("shop", "preview").Status.Vertical.Target, "Preview records the recommendation")
	active := e.waitCondition("shop", "paused", v1alpha2.ConditionActive, metav1.ConditionFalse)
	assert.Equal(t, "Paused", active.Reason)

	// Wait until the clamped one was rolled out: the controller has had its passes.
	require.Eventually(t, func() bool { return len(e.events("shop", "clamped", "SuccessfulTriggerRollout")) == 1 }, waitFor, 100*time.Millisecond)
	for _, name := range []string{"preview", "paused"} {
		dep, err := e.Kube.AppsV1().Deployments("shop").Get(context.Background(), name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, dep.Spec.Template.Annotations, "%s: the workload is never written", name)
		assert.Equal(t, int64(1), dep.Generation, "%s: the workload is never written", name)
		rs := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name + "-6f9c8d7b5", UID: types.UID("u-" + name), Controller: testenv.Ptr(true)}
		p := e.rsPod(dep, rs, "6f9c8d7b5", "new")
		assert.Empty(t, p.Annotations[v1alpha2.AutoscalerIDAnnotation], "%s: pods are not patched", name)
		assert.Equal(t, "250m", ptrQ(p.Spec.Containers[0].Resources.Requests.Cpu()))
	}
	assert.Nil(t, e.getDPA("shop", "paused").Status.Vertical, "a paused DPA gets no recommendation")
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
	e.startAgent(nil)
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
		{"lazyscale", "self", "lazyscale", nil, "InvalidSpec", "lazyscale's own namespace"},
		{"shop", "second", "web", nil, "TargetAlreadyAutoscaled", "already autoscaled by the older DPA first"},
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
		assert.False(t, meta.IsStatusConditionTrue(e.getDPA(tt.ns, tt.name).Status.Conditions, v1alpha2.ConditionActive), tt.name)
	}

	// minReplicas > maxReplicas never gets this far: the CRD rejects it with the field named.
	u := testenv.DPA("shop", "bounds", "api")
	require.NoError(t, unstructured.SetNestedField(u.Object, map[string]any{"minReplicas": int64(5), "maxReplicas": int64(2)}, "spec", "constraints"))
	_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Create(context.Background(), u, metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "minReplicas")
	assert.Empty(t, e.LazyscaleRequests("deployments", "patch"), "no action on invalid DPAs")
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

// A StatefulSet is its pods' direct owner: its template is rolled out and its new pods are
// patched the same way.
func TestVerticalStatefulSet(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	ctx := context.Background()
	sts, err := e.Kube.AppsV1().StatefulSets("shop").Create(ctx, testenv.StatefulSet("shop", "db", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: sts.UID, Controller: testenv.Ptr(true)}
	_, err = e.CreatePod("shop", "db-0", map[string]string{"app": "db"}, owner)
	require.NoError(t, err)
	e.startAgent(nil)
	u := testenv.DPA("shop", "db", "db")
	require.NoError(t, unstructured.SetNestedField(u.Object, "StatefulSet", "spec", "targetRef", "kind"))
	u.SetAnnotations(map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "750m"}}]`})
	_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Create(ctx, u, metav1.CreateOptions{})
	require.NoError(t, err)

	var version string
	require.Eventually(t, func() bool {
		s, err := e.Kube.AppsV1().StatefulSets("shop").Get(ctx, "db", metav1.GetOptions{})
		require.NoError(t, err)
		version = s.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation]
		return version != ""
	}, waitFor, 100*time.Millisecond, "the StatefulSet was never rolled out")
	assert.Equal(t, version, e.getDPA("shop", "db").Status.Vertical.Target.Version)
	// The StatefulSet controller would recreate db-0: the new pod gets the resources.
	require.NoError(t, e.Kube.CoreV1().Pods("shop").Delete(ctx, "db-0", metav1.DeleteOptions{}))
	var pod *corev1.Pod
	require.Eventually(t, func() bool {
		pod, err = e.CreatePod("shop", fmt.Sprintf("db-%d", time.Now().UnixNano()%1000+1), map[string]string{"app": "db"}, owner)
		require.NoError(t, err)
		return pod.Annotations[v1alpha2.RecommendationIDAnnotation] == version
	}, waitFor, 200*time.Millisecond)
	assert.Equal(t, "750m", ptrQ(pod.Spec.Containers[0].Resources.Requests.Cpu()))
	assert.Equal(t, "shop/db", pod.Annotations[v1alpha2.AutoscalerIDAnnotation])
}

// Horizontal scaling through the /scale subresource: the recommendation is clamped to
// maxReplicas and limited by the scale-up rules, the action is recorded; Preview and a
// target scaled to zero are never scaled.
func TestHorizontalThroughScale(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	ctx := context.Background()
	replicas := map[string]int32{"web": 2, "api": 1, "idle": 0}
	for name, n := range replicas {
		d := testenv.Deployment("shop", name, nil)
		d.Spec.Replicas = testenv.Ptr(n)
		_, err := e.Kube.AppsV1().Deployments("shop").Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	e.startAgent(nil)
	bounds := map[string]any{"minReplicas": int64(1), "maxReplicas": int64(5)}
	e.dpa("shop", "web", "web", map[string]string{v1alpha2.ForceReplicasAnnotation: "6"}, map[string]any{"spec.constraints": bounds})
	e.dpa("shop", "api", "api", map[string]string{v1alpha2.ForceReplicasAnnotation: "3"}, map[string]any{"spec.applyPolicy.mode": "Preview"})
	e.dpa("shop", "idle", "idle", map[string]string{v1alpha2.ForceReplicasAnnotation: "3"}, nil)

	e.waitReplicas("shop", "web", 5) // maxReplicas
	limited := e.waitCondition("shop", "web", v1alpha2.ConditionHorizontalScalingLimited, metav1.ConditionTrue)
	assert.Contains(t, limited.Message, "above maxReplicas 5")
	var status *v1alpha2.DatadogPodAutoscalerHorizontalStatus
	require.Eventually(t, func() bool {
		status = e.getDPA("shop", "web").Status.Horizontal
		return status != nil && len(status.LastActions) == 1
	}, waitFor, 100*time.Millisecond)
	act := status.LastActions[0]
	assert.Equal(t, int32(2), act.FromReplicas)
	assert.Equal(t, int32(5), act.ToReplicas)
	assert.Equal(t, int32(6), *act.RecommendedReplicas)
	assert.Contains(t, *act.LimitedReason, "maxReplicas")
	assert.Equal(t, int32(6), status.Target.DesiredReplicas)
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerManualValueSource, status.Target.Source)
	assert.Len(t, e.events("shop", "web", "SuccessfulScale"), 1)

	preview := e.waitCondition("shop", "api", v1alpha2.ConditionHorizontalAbleToScale, metav1.ConditionFalse)
	assert.Equal(t, "PreviewMode", preview.Reason)
	zero := e.waitCondition("shop", "idle", v1alpha2.ConditionHorizontalAbleToScale, metav1.ConditionFalse)
	assert.Equal(t, "ScalingDisabled", zero.Reason)
	for name, n := range map[string]int32{"api": 1, "idle": 0} {
		assert.Equal(t, n, e.replicas("shop", name), "%s is never scaled", name)
	}
	assert.Len(t, e.LazyscaleRequests("deployments", "update"), 1, "one /scale write in all")
}
