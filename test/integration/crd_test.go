package integration

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// The generated CRDs make the apiserver reject what the Datadog API's schema rejects, with a
// message naming the field. They reject nothing more: what that schema accepts and lazyscale
// cannot act on is reported by the controller (TestInvalidSpecsGetErrorCondition).
func TestCRDValidation(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	dpas := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop")

	tests := []struct {
		name   string
		mutate func(spec map[string]any)
		want   string
	}{
		{"utilization above 100", func(s map[string]any) {
			setPath(s, int64(150), "objectives", 0, "podResource", "value", "utilization")
		}, "utilization"},
		{"no objectives", func(s map[string]any) { s["objectives"] = []any{} }, "objectives"},
		{"unknown mode", func(s map[string]any) { s["applyPolicy"] = map[string]any{"mode": "Sometimes"} }, "mode"},
		{"rule period out of range", func(s map[string]any) {
			s["applyPolicy"] = map[string]any{"scaleUp": map[string]any{"rules": []any{
				map[string]any{"type": "Pods", "value": int64(1), "periodSeconds": int64(3601)}}}}
		}, "periodSeconds"},
		{"window out of range", func(s map[string]any) {
			s["applyPolicy"] = map[string]any{"scaleDown": map[string]any{"stabilizationWindowSeconds": int64(3601)}}
		}, "stabilizationWindowSeconds"},
		{"unknown update strategy", func(s map[string]any) {
			s["applyPolicy"] = map[string]any{"update": map[string]any{"strategy": "Sometimes"}}
		}, "strategy"},
		{"missing targetRef", func(s map[string]any) { delete(s, "targetRef") }, "targetRef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := testenv.DPA("shop", "bad", "cart")
			tt.mutate(obj.Object["spec"].(map[string]any))
			_, err := dpas.Create(context.Background(), obj, metav1.CreateOptions{})
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "%v", err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	created, err := dpas.Create(context.Background(), testenv.DPA("shop", "good", "cart"), metav1.CreateOptions{})
	require.NoError(t, err)
	mode, _, _ := unstructured.NestedString(created.Object, "spec", "owner")
	assert.Equal(t, "Local", mode, "defaults applied by the CRD")

	// What the Datadog schema accepts, ours does, and keeps: no objectives, a window of an
	// hour, minReplicas above maxReplicas (the controller reports it), a false that must not
	// come back as the default true.
	loose := testenv.DPA("shop", "loose", "cart")
	spec := loose.Object["spec"].(map[string]any)
	delete(spec, "objectives")
	spec["constraints"] = map[string]any{"minReplicas": int64(5), "maxReplicas": int64(2)}
	spec["applyPolicy"] = map[string]any{"scaleDown": map[string]any{"stabilizationWindowSeconds": int64(3600)},
		"update": map[string]any{"strategy": "TriggerRollout", "resizePendingPeriod": int64(120)}}
	spec["fallback"] = map[string]any{"horizontal": map[string]any{"enabled": false}}
	created, err = dpas.Create(context.Background(), loose, metav1.CreateOptions{})
	require.NoError(t, err)
	enabled, found, _ := unstructured.NestedBool(created.Object, "spec", "fallback", "horizontal", "enabled")
	assert.True(t, found)
	assert.False(t, enabled, "enabled: false is kept")
	period, _, _ := unstructured.NestedInt64(created.Object, "spec", "applyPolicy", "update", "resizePendingPeriod")
	assert.Equal(t, int64(120), period)
	var typed v1alpha2.DatadogPodAutoscaler
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(created.Object, &typed))
	back, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&typed)
	require.NoError(t, err)
	enabled, found, _ = unstructured.NestedBool(back, "spec", "fallback", "horizontal", "enabled")
	assert.True(t, found, "a false survives lazyscale's own round trip (no omitempty)")
	assert.False(t, enabled)
}

// setPath sets a value at a path of map keys and list indexes.
func setPath(obj map[string]any, value any, path ...any) {
	var cur any = obj
	for i, p := range path {
		last := i == len(path)-1
		switch k := p.(type) {
		case string:
			m := cur.(map[string]any)
			if last {
				m[k] = value
				return
			}
			cur = m[k]
		case int:
			l := cur.([]any)
			if last {
				l[k] = value
				return
			}
			cur = l[k]
		}
	}
}
