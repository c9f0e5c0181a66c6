package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// readCorpus reads the YAML documents of a testdata file.
func readCorpus(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return out
		} else {
			require.NoError(t, err)
		}
		if obj != nil {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}

// kept reports the first field of want that got is missing or has with another value (""
// when got has all of want; got may have more, e.g. defaults).
func kept(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path + ": not an object"
		}
		for k, v := range w {
			if msg := kept(v, g[k], path+"."+k); msg != "" {
				return msg
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: %d items, want %d", path, len(g), len(w))
		}
		for i := range w {
			if msg := kept(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); msg != "" {
				return msg
			}
		}
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) && !reflect.DeepEqual(want, got) {
			return fmt.Sprintf("%s: %v, want %v", path, got, want)
		}
	}
	return ""
}

// DPAs written for the Datadog API: lazyscale's CRDs accept every field and keep it; the status
// the Cluster Agent writes is accepted too; lazyscale reconciles each DPA, and acts on what it
// supports: the full one's pods run with the recommendation clamped to minAllowed, and with
// CPURequestsRemoveLimitsMemoryRequestsAndLimits their CPU limit is removed.
func TestDatadogAPICorpus(t *testing.T) {
	e := newClusterEnv(t)
	ctx := context.Background()
	ns := e.Namespace("corpus", nil)
	full := testenv.Deployment(ns, "full", nil)
	full.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	_, err := e.Kube.AppsV1().Deployments(ns).Create(ctx, full, metav1.CreateOptions{})
	require.NoError(t, err)
	e.waitRunning(ns, "full", 1)
	for _, name := range []string{"query", "minimal", "remote"} {
		e.runningDeployment(ns, name, 1)
	}

	dpas := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns)
	corpus := readCorpus(t, "testdata/datadog-api-corpus.yaml")
	require.Len(t, corpus, 4)
	for _, obj := range corpus {
		obj.SetNamespace(ns)
		created, err := dpas.Create(ctx, obj, metav1.CreateOptions{})
		require.NoError(t, err, "the Datadog API accepts %s", obj.GetName())
		assert.Empty(t, kept(obj.Object["spec"], created.Object["spec"], "spec"), "%s: a field was dropped or changed", obj.GetName())
	}

	// A status as the Cluster Agent writes it: conditions without reasons, recommendations
	// history, the pod totals, a runtime value, the External source.
	remote, err := dpas.Get(ctx, "remote", metav1.GetOptions{})
	require.NoError(t, err)
	status := map[string]any{
		"currentReplicas": int64(1),
		"options":         map[string]any{"burstable": false},
		"conditions": []any{
			map[string]any{"type": "Active", "status": "True"},
			map[string]any{"type": "HorizontalAbleToRecommend", "status": "True", "lastTransitionTime": "2026-11-28T10:00:00Z"},
		},
		"horizontal": map[string]any{
			"target":              map[string]any{"source": "External", "generatedAt": "2026-11-28T10:00:00Z", "desiredReplicas": int64(2)},
			"lastActions":         []any{map[string]any{"time": "2026-11-28T10:00:00Z", "replicas": int64(1), "toReplicas": int64(2), "recommendedReplicas": int64(2)}},
			"lastRecommendations": []any{map[string]any{"source": "External", "generatedAt": "2026-11-28T10:00:00Z", "desiredReplicas": int64(2)}},
		},
		"vertical": map[string]any{
			"target": map[string]any{"source": "Autoscaling", "generatedAt": "2026-11-28T10:00:00Z", "version": "abc123", "scaled": int64(1), "evicted": int64(0),
				"desiredResources": []any{map[string]any{"name": "app", "requests": map[string]any{"cpu": "200m", "memory": "256Mi"},
					"runtime": map[string]any{"gomemlimit": "230MiB"}}},
				"podCPURequest": "200m", "podMemoryRequest": "256Mi"},
			"lastAction": map[string]any{"time": "2026-11-28T10:00:00Z", "version": "abc123", "type": "ResizeTriggered"},
		},
	}
	remote.Object["status"] = status
	written, err := dpas.UpdateStatus(ctx, remote, metav1.UpdateOptions{})
	require.NoError(t, err, "the status the Cluster Agent writes is accepted")
	assert.Empty(t, kept(status, written.Object["status"], "status"), "a status field was dropped")

	// lazyscale reconciles every DPA (its own status replaces the Cluster Agent's).
	e.startAgent(fastResync)
	for _, obj := range corpus {
		require.Eventually(t, func() bool {
			dpa := e.getDPA(ns, obj.GetName())
			return v1alpha2.IsConditionTrue(dpa.Status.Conditions, v1alpha2.ConditionActive) &&
				v1alpha2.FindCondition(dpa.Status.Conditions, v1alpha2.ConditionActive).Reason != ""
		}, waitFor, 100*time.Millisecond, "%s never reconciled: %v", obj.GetName(), dpaState{e, ns, obj.GetName()})
	}

	// What lazyscale keeps but does not act on is named in NotActedOn; a DPA with none has no
	// such condition.
	for name, want := range map[string]string{"full": "rolloutFallbackDelay", "query": "objectives[0] (CustomQuery)", "remote": "owner Remote"} {
		require.Eventually(t, func() bool {
			c := v1alpha2.FindCondition(e.getDPA(ns, name).Status.Conditions, v1alpha2.ConditionNotActedOn)
			return c != nil && c.Status == metav1.ConditionTrue && strings.Contains(c.Message, want)
		}, waitFor, 100*time.Millisecond, "%s: no NotActedOn naming %q: %v", name, want, dpaState{e, ns, name})
	}
	assert.Nil(t, v1alpha2.FindCondition(e.getDPA(ns, "minimal").Status.Conditions, v1alpha2.ConditionNotActedOn))

	// The full one: the local recommendation (kwok's default usage is tiny) is clamped to
	// minAllowed, rolled out, and the pods run without a CPU limit.
	var version string
	require.Eventually(t, func() bool {
		v := e.getDPA(ns, "full").Status.Vertical
		if v == nil || v.Target == nil {
			return false
		}
		version = v.Target.Version
		pods := e.RunningPods(ns, "full")
		for _, p := range pods {
			r := p.Spec.Containers[0].Resources
			if p.Annotations[v1alpha2.RecommendationIDAnnotation] != version || r.Requests.Cpu().String() != "50m" {
				return false
			}
			if _, ok := r.Limits[corev1.ResourceCPU]; ok {
				return false
			}
			if _, ok := r.Limits[corev1.ResourceMemory]; !ok {
				return false
			}
		}
		return len(pods) >= 1
	}, waitFor, 250*time.Millisecond, "full's pods never ran with the clamped recommendation and no CPU limit: %v\npods: %v",
		dpaState{e, ns, "full"}, podsState{e, ns, "full"})
	target := e.getDPA(ns, "full").Status.Vertical.Target
	assert.Equal(t, "50m", target.PodCPURequest.String(), "podCPURequest sums the containers' requests")
	require.Eventually(t, func() bool { // counted at the reconcile the new pods cause
		s := e.getDPA(ns, "full").Status.Vertical.Target.Scaled
		return s != nil && *s > 0
	}, waitFor, 100*time.Millisecond, "status.vertical.target.scaled never counted the pods: %v", dpaState{e, ns, "full"})

	// Preview and update.strategy Disabled: the remote one's workload is never written.
	dep, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, "remote", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), dep.Generation)
}

// warnings collects the apiserver's warnings (the Warning headers) a client receives.
type warnings struct {
	mu   sync.Mutex
	seen []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	w.seen = append(w.seen, text)
	w.mu.Unlock()
}

func (w *warnings) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.seen, "\n")
}

// v1alpha1, as the Datadog CRD serves it: accepted, stored as v1alpha2 without conversion.
// What both versions share is kept and reconciled, and reads back through either version. The
// v1alpha1-only policy and targets are not kept by the apiserver (nor under the Datadog CRD):
// the client is warned, and lazyscale, which sees from managedFields that they were written,
// acts on nothing that is left (an applyMode None would otherwise come back as Apply) and says
// so in an Error condition, until the DPA is written again as v1alpha2.
func TestDatadogAPICorpusV1alpha1(t *testing.T) {
	e := newClusterEnv(t)
	ctx := context.Background()
	ns := e.Namespace("corpus", nil)
	for _, name := range []string{"shared", "policy"} {
		e.runningDeployment(ns, name, 1)
	}
	var warned warnings
	cfg := rest.CopyConfig(e.CP.Config)
	cfg.WarningHandler = &warned
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	v1alpha1 := v1alpha2.DatadogPodAutoscalersResource
	v1alpha1.Version = "v1alpha1"
	old := dyn.Resource(v1alpha1).Namespace(ns)

	corpus := readCorpus(t, "testdata/datadog-api-corpus-v1alpha1.yaml")
	require.Len(t, corpus, 2)
	for _, obj := range corpus {
		obj.SetNamespace(ns)
		_, err := old.Create(ctx, obj, metav1.CreateOptions{})
		require.NoError(t, err, "the Datadog API's v1alpha1 accepts %s", obj.GetName())
	}
	assert.Contains(t, warned.all(), "datadoghq.com/v1alpha1 is stored as v1alpha2 without conversion", "the client is told")

	shared, err := old.Get(ctx, "shared", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, kept(corpus[0].Object["spec"], shared.Object["spec"], "spec"), "the shared fields are kept")
	policy, err := old.Get(ctx, "policy", metav1.GetOptions{})
	require.NoError(t, err)
	spec := policy.Object["spec"].(map[string]any)
	assert.NotContains(t, spec, "policy", "the apiserver does not keep v1alpha1's policy (nor does the Datadog CRD)")
	assert.NotContains(t, spec, "targets")

	e.startAgent(fastResync)
	e.waitCondition(ns, "shared", v1alpha2.ConditionActive, metav1.ConditionTrue)
	c := e.waitCondition(ns, "policy", v1alpha2.ConditionError, metav1.ConditionTrue)
	assert.Equal(t, "SpecLostInConversion", c.Reason)
	assert.Contains(t, c.Message, "written as datadoghq.com/v1alpha1 with spec.policy and spec.targets")
	assert.Contains(t, c.Message, "policy.applyMode All is applyPolicy.mode Apply")

	// The status lazyscale writes (v1alpha2) reads back through v1alpha1.
	require.Eventually(t, func() bool {
		u, err := old.Get(ctx, "shared", metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		return len(conds) > 0
	}, waitFor, 100*time.Millisecond, "status through v1alpha1")

	// Created again as v1alpha2 (applyPolicy and objectives): acted on.
	require.Never(t, func() bool { return e.replicas(ns, "policy") != 1 }, 3*time.Second, 200*time.Millisecond, "a DPA whose spec was lost is not acted on")
	dpas := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns)
	require.NoError(t, dpas.Delete(ctx, "policy", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := dpas.Get(ctx, "policy", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, waitFor, 100*time.Millisecond)
	again := corpus[1].DeepCopy()
	again.SetAPIVersion("datadoghq.com/v1alpha2")
	again.SetResourceVersion("")
	spec = again.Object["spec"].(map[string]any)
	spec["applyPolicy"] = map[string]any{"mode": "Apply", "scaleDown": map[string]any{"strategy": "Disabled"}}
	spec["objectives"] = spec["targets"]
	delete(spec, "policy")
	delete(spec, "targets")
	_, err = dpas.Create(ctx, again, metav1.CreateOptions{})
	require.NoError(t, err)
	e.waitCondition(ns, "policy", v1alpha2.ConditionError, metav1.ConditionFalse)
	e.waitReplicas(ns, "policy", 3)
	e.waitRunning(ns, "policy", 3)
}
