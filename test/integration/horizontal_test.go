package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	autoscalingdef "github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// fakeClock is the time the agent's controllers decide by; the test moves it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// replicaRecommender is an external recommender that answers a replica count, timestamped by
// the test's clock (so that the fake time never makes it stale).
type replicaRecommender struct {
	*httptest.Server
	replicas atomic.Int32
}

func newReplicaRecommender(t *testing.T, clock func() time.Time, replicas int32) *replicaRecommender {
	r := &replicaRecommender{}
	r.replicas.Store(replicas)
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		now, n := clock(), r.replicas.Load()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(external.RecommendationResponse{Timestamp: &now, Replicas: &n})
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *replicaRecommender) annotation() string {
	return fmt.Sprintf(`{"endpoint": %q}`, r.URL+"/recommend")
}

// Scaling through /scale step by step on a fake clock, from an external recommender: the
// scale-up rule allows +2 pods per minute; the scale-down stabilization window holds the count
// for two minutes, then the scale-down rule allows -50 % per minute; every action is recorded
// with its limit; a paused DPA never scales.
func TestHorizontalStepByStep(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	ctx := context.Background()
	d := testenv.Deployment("shop", "web", nil)
	d.Spec.Replicas = testenv.Ptr(int32(2))
	_, err := e.Kube.AppsV1().Deployments("shop").Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	clock := &fakeClock{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	// The controller looks every second of real time; what it decides depends on the fake time.
	e.startAgent(map[string]string{"autoscaling.workload.resync_period": "1s", "autoscaling.workload.external_recommender.allowed_endpoints": "127.0.0.0/8"}, fx.Supply(autoscalingdef.Clock(clock.Now)))
	rec := newReplicaRecommender(t, clock.Now, 10)
	e.dpa("shop", "web", "web", map[string]string{v1alpha2.CustomRecommenderAnnotation: rec.annotation()}, map[string]any{
		"spec.constraints": map[string]any{"minReplicas": int64(1), "maxReplicas": int64(20)},
		"spec.applyPolicy": map[string]any{
			"scaleUp": map[string]any{"strategy": "Max", "stabilizationWindowSeconds": int64(0),
				"rules": []any{map[string]any{"type": "Pods", "value": int64(2), "periodSeconds": int64(60)}}},
			"scaleDown": map[string]any{"strategy": "Max", "stabilizationWindowSeconds": int64(120),
				"rules": []any{map[string]any{"type": "Percent", "value": int64(50), "periodSeconds": int64(60)}}},
		},
	})
	// settle checks the count reached want and stays there while the fake time stands still.
	settle := func(want int32, step string) {
		t.Helper()
		e.waitReplicas("shop", "web", want)
		require.Never(t, func() bool { return e.replicas("shop", "web") != want }, 3*time.Second, 200*time.Millisecond, "%s: moved past %d without time passing", step, want)
	}

	settle(4, "scale-up rule: +2 in the first minute")
	for _, want := range []int32{6, 8, 10} {
		clock.Advance(61 * time.Second)
		settle(want, "next minute")
	}

	rec.replicas.Store(3)
	e.patchDPA("shop", "web", `{"metadata":{"annotations":{"example.com/ask-again":"1"}}}`) // a changed DPA is asked again at once
	e.waitHorizontalTarget("shop", "web", v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, 3)
	settle(10, "scale-down window: the highest recommendation of the last 2 minutes is 10")
	limited := e.waitCondition("shop", "web", v1alpha2.ConditionHorizontalScalingLimited, metav1.ConditionTrue)
	assert.Contains(t, limited.Message, "stabilized")

	clock.Advance(121 * time.Second)
	settle(5, "window passed: -50 % per minute")
	clock.Advance(61 * time.Second)
	settle(3, "next minute: down to the recommendation")

	actions := e.getDPA("shop", "web").Status.Horizontal.LastActions
	var steps [][2]int32
	for _, a := range actions {
		steps = append(steps, [2]int32{a.FromReplicas, a.ToReplicas})
	}
	assert.Equal(t, [][2]int32{{2, 4}, {4, 6}, {6, 8}, {8, 10}, {10, 5}, {5, 3}}, steps)
	require.NotNil(t, actions[0].LimitedReason)
	assert.Contains(t, *actions[0].LimitedReason, "scale-up limited to 4")
	require.NotNil(t, actions[4].LimitedReason)
	assert.Contains(t, *actions[4].LimitedReason, "scale-down limited to 5")
	assert.Nil(t, actions[5].LimitedReason)

	// Paused: a new recommendation and time passing change nothing.
	rec.replicas.Store(8)
	e.patchDPA("shop", "web", `{"metadata":{"annotations":{"`+v1alpha2.PauseAnnotation+`":"true"}}}`)
	e.waitCondition("shop", "web", v1alpha2.ConditionActive, metav1.ConditionFalse)
	clock.Advance(10 * time.Minute)
	settle(3, "paused")

	// No cluster profile exists: the profile controller watched no workload; the only
	// workload and namespace lists and watches are the label-filtered trigger watches.
	for _, r := range []string{"deployments", "statefulsets", "namespaces"} {
		for _, req := range e.LazyscaleRequests(r, "list", "watch") {
			assert.Contains(t, req.RequestURI, "labelSelector=", "%s %s", req.Verb, req.RequestURI)
		}
	}
}

// installWidgetCRD installs example.com/v1 Widget, namespaced, with a /scale subresource
// (spec.replicas, status.replicas, status.selector), and waits until it is served.
func (e *env) installWidgetCRD() {
	e.T.Helper()
	client, err := apiextensions.NewForConfig(e.CP.Config)
	require.NoError(e.T, err)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: testenv.Ptr(true)}},
				Subresources: &apiextensionsv1.CustomResourceSubresources{
					Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
					Scale: &apiextensionsv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.replicas",
						StatusReplicasPath: ".status.replicas", LabelSelectorPath: testenv.Ptr(".status.selector")},
				},
			}},
		},
	}
	_, err = client.ApiextensionsV1().CustomResourceDefinitions().Create(context.Background(), crd, metav1.CreateOptions{})
	require.NoError(e.T, err)
	require.Eventually(e.T, func() bool {
		got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(context.Background(), crd.Name, metav1.GetOptions{})
		require.NoError(e.T, err)
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true
			}
		}
		return false
	}, waitFor, 100*time.Millisecond)
}

// Any kind with a /scale subresource is scaled horizontally: a ReplicaSet, and a custom
// resource whose CRD is installed after lazyscale first discovered the API (its REST mapper
// rediscovers). Neither gets a vertical recommendation.
func TestHorizontalAnyScalableKind(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	ctx := context.Background()
	d := testenv.Deployment("shop", "rs", nil)
	_, err := e.Kube.AppsV1().ReplicaSets("shop").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta,
		Spec: appsv1.ReplicaSetSpec{Replicas: testenv.Ptr(int32(1)), Selector: d.Spec.Selector, Template: d.Spec.Template}}, metav1.CreateOptions{})
	require.NoError(t, err)
	e.startAgent(map[string]string{"autoscaling.workload.resync_period": "2s"})
	e.dpa("shop", "rs", "rs", map[string]string{v1alpha2.ForceReplicasAnnotation: "3"}, map[string]any{"spec.targetRef.kind": "ReplicaSet"})
	require.Eventually(t, func() bool {
		rs, err := e.Kube.AppsV1().ReplicaSets("shop").Get(ctx, "rs", metav1.GetOptions{})
		require.NoError(t, err)
		return *rs.Spec.Replicas == 3
	}, waitFor, 100*time.Millisecond, "the ReplicaSet was never scaled")
	c := e.waitCondition("shop", "rs", v1alpha2.ConditionVerticalAbleToRecommend, metav1.ConditionFalse)
	assert.Equal(t, "UnsupportedTarget", c.Reason)

	e.installWidgetCRD()
	widgets := e.Dyn.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}).Namespace("shop")
	_, err = widgets.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w"},
		"spec": map[string]any{"replicas": int64(1)},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	e.dpa("shop", "widget", "w", map[string]string{v1alpha2.ForceReplicasAnnotation: "4"},
		map[string]any{"spec.targetRef.kind": "Widget", "spec.targetRef.apiVersion": "example.com/v1"})
	require.Eventually(t, func() bool {
		w, err := widgets.Get(ctx, "w", metav1.GetOptions{})
		require.NoError(t, err)
		n, _, _ := unstructured.NestedInt64(w.Object, "spec", "replicas")
		return n == 4
	}, waitFor, 100*time.Millisecond, "the Widget was never scaled through its /scale")
	assert.Len(t, e.events("shop", "widget", "SuccessfulScale"), 1)
}

// An external recommender that speaks the Datadog Cluster Agent's protocol: it is sent the
// Cluster Agent's request (targetRef, constraints, state, targets, settings) and its
// targetReplicas scales the Deployment; the value's source is External, as the Cluster Agent
// records it.
func TestDatadogProtocolRecommender(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	e.runningDeployment(ns, "web", 1)
	var mu sync.Mutex
	var asked []external.DatadogRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req external.DatadogRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		asked = append(asked, req)
		mu.Unlock()
		_, _ = fmt.Fprintf(w, `{"timestamp": %q, "targetReplicas": 3, "reason": "test"}`, time.Now().UTC().Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	e.startAgent(map[string]string{"autoscaling.workload.external_recommender.cluster_name": "local", "autoscaling.workload.external_recommender.allowed_endpoints": "127.0.0.0/8"})
	e.dpa(ns, "web", "web", map[string]string{v1alpha2.CustomRecommenderAnnotation: fmt.Sprintf(`{"endpoint": %q, "protocol": "datadog", "settings": {"model": "p95"}}`, srv.URL)},
		map[string]any{"spec.constraints": map[string]any{"minReplicas": int64(1), "maxReplicas": int64(5)}})
	e.waitReplicas(ns, "web", 3)
	e.waitRunning(ns, "web", 3)
	e.waitHorizontalTarget(ns, "web", v1alpha2.DatadogPodAutoscalerExternalValueSource, 3)
	mu.Lock()
	first := asked[0]
	mu.Unlock()
	assert.Equal(t, external.DatadogTargetRef{Cluster: "local", Namespace: ns, Kind: "Deployment", Name: "web", APIVersion: "apps/v1"}, first.TargetRef)
	assert.Equal(t, external.DatadogConstraints{MinReplicas: 1, MaxReplicas: 5}, first.Constraints)
	assert.Equal(t, []external.DatadogTarget{{Type: "cpu", TargetValue: 0.7}}, first.Targets, "the objective: pod CPU at 70 %%")
	require.NotNil(t, first.State.CurrentReplicas)
	assert.Equal(t, int32(1), *first.State.CurrentReplicas)
	assert.JSONEq(t, `"p95"`, string(first.Settings["model"]))
}
