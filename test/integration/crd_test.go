package integration

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// The generated CRDs make the apiserver reject invalid autoscalers with a message naming the
// field, before lazyscale ever sees them.
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
		{"utilization type without value", func(s map[string]any) {
			delete(s["objectives"].([]any)[0].(map[string]any)["podResource"].(map[string]any)["value"].(map[string]any), "utilization")
		}, "utilization is required"},
		{"minReplicas above maxReplicas", func(s map[string]any) {
			s["constraints"] = map[string]any{"minReplicas": int64(5), "maxReplicas": int64(2)}
		}, "minReplicas must not exceed maxReplicas"},
		{"rule period out of range", func(s map[string]any) {
			s["applyPolicy"] = map[string]any{"scaleUp": map[string]any{"rules": []any{
				map[string]any{"type": "Pods", "value": int64(1), "periodSeconds": int64(3600)}}}}
		}, "periodSeconds"},
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
