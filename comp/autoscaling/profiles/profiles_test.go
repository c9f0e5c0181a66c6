package profiles

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

func TestGeneratedDPAName(t *testing.T) {
	// As the Cluster Agent names them: printf 'Deployment.apps/shop/web' | sha256sum | cut -c1-8.
	assert.Equal(t, "web-7863c7ee", generatedDPAName("apps", "Deployment", "shop", "web"))
	assert.Equal(t, "db-e0c8a0b2", generatedDPAName("apps", "StatefulSet", "shop", "db"))
	assert.NotEqual(t, generatedDPAName("apps", "Deployment", "shop", "web"), generatedDPAName("apps", "StatefulSet", "shop", "web"))
	long := generatedDPAName("apps", "Deployment", "shop", strings.Repeat("a", 253))
	assert.Len(t, long, 253, "a long workload name is cut so the DPA name stays valid")
}

func TestTrimMetadata(t *testing.T) {
	in := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1",
		Labels:        map[string]string{"app": "web", v1alpha2.ProfileLabel: "standard"},
		Annotations:   map[string]string{"big": strings.Repeat("x", 10000)},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	out, err := trimMetadata(in)
	require.NoError(t, err)
	m := out.(*metav1.PartialObjectMetadata)
	assert.Equal(t, map[string]string{v1alpha2.ProfileLabel: "standard"}, m.Labels)
	assert.Empty(t, m.Annotations)
	assert.Empty(t, m.ManagedFields)
	assert.Equal(t, "u1", string(m.UID))
}

func TestGeneratedDPA(t *testing.T) {
	util := int32(70)
	prof := &v1alpha2.DatadogPodAutoscalerClusterProfile{ObjectMeta: metav1.ObjectMeta{Name: "standard"},
		Spec: v1alpha2.DatadogPodAutoscalerClusterProfileSpec{Template: v1alpha2.DatadogPodAutoscalerTemplate{
			Objectives: []v1alpha2.DatadogPodAutoscalerObjective{{Type: v1alpha2.DatadogPodAutoscalerPodResourceObjectiveType,
				PodResource: &v1alpha2.DatadogPodAutoscalerPodResourceObjective{Name: "cpu",
					Value: v1alpha2.DatadogPodAutoscalerObjectiveValue{Type: v1alpha2.DatadogPodAutoscalerUtilizationObjectiveValueType, Utilization: &util}}}},
		}}}
	w := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"}}
	u, err := generatedDPA(prof, "StatefulSet", w, "web-12345678")
	require.NoError(t, err)
	assert.Equal(t, "web-12345678", u.GetName())
	assert.Equal(t, "shop", u.GetNamespace())
	assert.Equal(t, "standard", u.GetLabels()[v1alpha2.GeneratedFromProfileLabel])
	assert.Equal(t, templateHash(prof), u.GetAnnotations()[v1alpha2.ProfileTemplateHashAnnotation])
	assert.NotContains(t, u.GetAnnotations(), v1alpha2.PreviewAnnotation)
	kind, _, _ := unstructured.NestedString(u.Object, "spec", "targetRef", "kind")
	assert.Equal(t, "StatefulSet", kind)
	require.Len(t, u.GetOwnerReferences(), 1)
	assert.Equal(t, "u1", string(u.GetOwnerReferences()[0].UID))
	_, hasStatus := u.Object["status"]
	assert.False(t, hasStatus)

	before := templateHash(prof)
	util = 60
	assert.NotEqual(t, before, templateHash(prof), "the hash follows the template")
	before = templateHash(prof)
	prof.Annotations = map[string]string{v1alpha2.PreviewAnnotation: `{"burstable":true}`}
	assert.NotEqual(t, before, templateHash(prof), "and the preview annotation")
	u, err = generatedDPA(prof, "StatefulSet", w, "web-12345678")
	require.NoError(t, err)
	assert.Equal(t, `{"burstable":true}`, u.GetAnnotations()[v1alpha2.PreviewAnnotation], "forwarded to the DPA")
}
