// Package apiobject moves lazyscale's typed datadoghq.com objects to and from the unstructured
// form the shared DPA cache and the dynamic client speak. The DPA controller and the cluster
// profile controller both write status through it.
package apiobject

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// FieldManager is the field manager of every write lazyscale makes.
const FieldManager = "lazyscale"

// DPA converts an object of the DPA cache. It fails on anything that is not a valid DPA.
func DPA(u *unstructured.Unstructured) (*v1alpha2.DatadogPodAutoscaler, error) {
	dpa := &v1alpha2.DatadogPodAutoscaler{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, dpa); err != nil {
		return nil, err
	}
	return dpa, nil
}

// UpdateStatus writes obj (a typed datadoghq.com/v1alpha2 object of kind) through the status
// subresource of res, guarded by obj's resourceVersion: a conflict means a newer version is
// on its way through the cache.
func UpdateStatus(ctx context.Context, res dynamic.ResourceInterface, obj runtime.Object, kind string) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha2.SchemeGroupVersion.String())
	u.SetKind(kind)
	_, err = res.UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// TargetRefOf reads an unstructured DPA's target kind and name.
func TargetRefOf(u *unstructured.Unstructured) (kind, name string) {
	kind, _, _ = unstructured.NestedString(u.Object, "spec", "targetRef", "kind")
	name, _, _ = unstructured.NestedString(u.Object, "spec", "targetRef", "name")
	return kind, name
}
