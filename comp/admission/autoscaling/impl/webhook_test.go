package impl

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	jsonpatchapply "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
)

// rawPod is a pod as the apiserver sends it, with fields this client does not know.
const rawPod = `{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"generateName": "web-5d8f7b9c4-", "namespace": "shop",
    "labels": {"app": "web", "pod-template-hash": "5d8f7b9c4"},
    "annotations": {"existing/key": "v"},
    "futureMetadataField": {"x": 1}},
  "spec": {
    "containers": [
      {"name": "app", "image": "app:1", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
       "futureContainerField": true},
      {"name": "gpu", "image": "gpu:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
    ],
    "futureSpecField": ["a", "b"]
  }
}`

func review(t testing.TB, object string) []byte {
	t.Helper()
	r := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "0d5f3a4e-1111-2222-3333-444455556666", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "shop",
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(object)},
		},
	}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	return b
}

// resizer changes what a real vertical patcher changes, plus names that need RFC 6901 escaping.
var resizer = def.PodPatcherFunc(func(p *corev1.Pod) (bool, error) {
	p.Annotations["autoscaling.datadoghq.com/autoscaler-id"] = "shop/web"
	p.Annotations["weird~key/with~1tilde"] = "escaped"
	p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("250m")
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}
	p.Spec.Containers[1].Resources.Limits["nvidia.com/gpu"] = resource.MustParse("2")
	p.Spec.Containers[1].Resources.Requests = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2")}
	return true, nil
})

func TestPatchRoundTrip(t *testing.T) {
	w := newWebhook(zap.NewNop(), nil, nil)
	w.SetPatcher(resizer)
	resp := w.Handle(context.Background(), "uid", review(t, rawPod))
	require.True(t, resp.Allowed)
	require.Equal(t, "patched", resp.Outcome, "warnings: %v", resp.Warnings)
	require.NotEmpty(t, resp.Patch)

	patchedRaw := requireExactPatch(t, resp.Patch, resizer)

	// Fields unknown to this client survive.
	var generic map[string]any
	require.NoError(t, json.Unmarshal(patchedRaw, &generic))
	spec := generic["spec"].(map[string]any)
	assert.Equal(t, []any{"a", "b"}, spec["futureSpecField"])
	assert.Equal(t, true, spec["containers"].([]any)[0].(map[string]any)["futureContainerField"])
	assert.Equal(t, map[string]any{"x": float64(1)}, generic["metadata"].(map[string]any)["futureMetadataField"])

	// RFC 6901 escaping of "/" and "~" in the annotation key.
	assert.Contains(t, string(resp.Patch), `/metadata/annotations/weird~0key~1with~01tilde`)
}

func TestNoPatcherSkipsWithoutDecoding(t *testing.T) {
	w := newWebhook(zap.NewNop(), nil, nil)
	resp := w.Handle(context.Background(), "uid", []byte("not even JSON: the body is never read"))
	assert.True(t, resp.Allowed)
	assert.Equal(t, "skipped", resp.Outcome)
	assert.Nil(t, resp.Patch)
}

func TestUndecodablePodIsAdmittedWithWarning(t *testing.T) {
	w := newWebhook(zap.NewNop(), nil, nil)
	w.SetPatcher(resizer)
	resp := w.Handle(context.Background(), "uid", review(t, `{"spec": {"containers": "not a list"}}`))
	assert.True(t, resp.Allowed, "never block a pod by mistake")
	assert.Nil(t, resp.Patch)
	assert.Equal(t, "error", resp.Outcome)
	require.Len(t, resp.Warnings, 1)
	assert.Contains(t, resp.Warnings[0], "decode pod")
}

func TestUnchangedPodHasNoPatch(t *testing.T) {
	w := newWebhook(zap.NewNop(), nil, nil)
	w.SetPatcher(def.PodPatcherFunc(func(*corev1.Pod) (bool, error) { return false, nil }))
	resp := w.Handle(context.Background(), "uid", review(t, rawPod))
	assert.True(t, resp.Allowed)
	assert.Equal(t, "unchanged", resp.Outcome)
	assert.Nil(t, resp.Patch)
	w.SetPatcher(nil)
	assert.False(t, w.PatcherInstalled())
}

// BenchmarkHandle: the gate-closed fast path against a patching review.
func BenchmarkHandle(b *testing.B) {
	body := review(b, rawPod)
	b.Run("no-patcher", func(b *testing.B) {
		w := newWebhook(zap.NewNop(), nil, nil)
		b.ReportAllocs()
		for b.Loop() {
			w.Handle(context.Background(), "uid", body)
		}
	})
	b.Run("patching", func(b *testing.B) {
		w := newWebhook(zap.NewNop(), nil, nil)
		w.SetPatcher(def.PodPatcherFunc(func(p *corev1.Pod) (bool, error) {
			p.Annotations["autoscaling.datadoghq.com/autoscaler-id"] = "shop/web"
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("250m")
			return true, nil
		}))
		b.ReportAllocs()
		for b.Loop() {
			w.Handle(context.Background(), "uid", body)
		}
	})
}

// A patcher that changes something outside labels, annotations and resources still gets an
// exact patch: the whole pod is diffed.
func TestPatchOutsideTheViewFallsBackToWholePod(t *testing.T) {
	w := newWebhook(zap.NewNop(), nil, nil)
	envAdder := def.PodPatcherFunc(func(p *corev1.Pod) (bool, error) {
		p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "GOMAXPROCS", Value: "2"})
		p.Annotations["autoscaling.datadoghq.com/rec-id"] = "r2"
		return true, nil
	})
	w.SetPatcher(envAdder)
	resp := w.Handle(context.Background(), "uid", review(t, rawPod))
	require.Equal(t, "patched", resp.Outcome, "%v", resp.Warnings)
	requireExactPatch(t, resp.Patch, envAdder)
}

// requireExactPatch applies patch to exactly what the apiserver sent and checks that the result
// is the pod the patcher makes of it; it returns the patched JSON.
func requireExactPatch(t *testing.T, patchJSON []byte, patcher def.PodPatcher) []byte {
	t.Helper()
	patch, err := jsonpatchapply.DecodePatch(patchJSON)
	require.NoError(t, err)
	patchedRaw, err := patch.Apply([]byte(rawPod))
	require.NoError(t, err)
	var got, want corev1.Pod
	require.NoError(t, json.Unmarshal(patchedRaw, &got))
	require.NoError(t, json.Unmarshal([]byte(rawPod), &want))
	want.Namespace = "shop"
	_, err = patcher.PatchPod(&want)
	require.NoError(t, err)
	assert.Equal(t, want.Spec, got.Spec, "the patched pod is exactly the patcher's pod")
	assert.Equal(t, want.ObjectMeta, got.ObjectMeta)
	return patchedRaw
}

// BenchmarkHandleRealistic patches the review the real apiserver sent for a bench pod
// (testdata/review-bench-pod.json, captured with `go run ./test/bench -capture-review`): three
// containers with env, a dozen labels, defaults and managedFields, about 8 KB.
func BenchmarkHandleRealistic(b *testing.B) {
	body, err := os.ReadFile("testdata/review-bench-pod.json")
	require.NoError(b, err)
	w := newWebhook(zap.NewNop(), nil, nil)
	w.SetPatcher(def.PodPatcherFunc(func(p *corev1.Pod) (bool, error) {
		p.Annotations["autoscaling.datadoghq.com/autoscaler-id"] = "team-0/svc-000"
		return true, nil
	}))
	b.ReportAllocs()
	for b.Loop() {
		if resp := w.Handle(context.Background(), "uid", body); resp.Outcome != "patched" {
			b.Fatalf("outcome %q", resp.Outcome)
		}
	}
}
