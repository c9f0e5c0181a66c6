package validation

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

func TestNotActedOnNamesEachFieldLazyscaleKeepsButIgnores(t *testing.T) {
	yes := true
	dpa := &v1alpha2.DatadogPodAutoscaler{Spec: v1alpha2.DatadogPodAutoscalerSpec{
		Owner:      v1alpha2.DatadogPodAutoscalerRemoteOwner,
		Objectives: []v1alpha2.DatadogPodAutoscalerObjective{{Type: v1alpha2.DatadogPodAutoscalerCustomQueryObjectiveType}},
		ApplyPolicy: &v1alpha2.DatadogPodAutoscalerApplyPolicy{Update: &v1alpha2.DatadogPodAutoscalerUpdatePolicy{
			Strategy: v1alpha2.DatadogPodAutoscalerTriggerRolloutUpdateStrategy, ResizePendingPeriod: 60, RolloutFallbackDelay: 60}},
		Options: &v1alpha2.DatadogPodAutoscalerOptions{Burstable: &yes},
	}}
	got := strings.Join(NotActedOn(dpa), "\n")
	for _, want := range []string{"owner Remote", "objectives[0] (CustomQuery)", "resizePendingPeriod: only strategy Auto", "rolloutFallbackDelay"} {
		assert.Contains(t, got, want)
	}

	// An external recommender can serve the custom query; a Local DPA with what lazyscale
	// does act on has nothing to report.
	dpa.Annotations = map[string]string{v1alpha2.CustomRecommenderAnnotation: `{"endpoint": "http://r.svc/x"}`}
	assert.NotContains(t, strings.Join(NotActedOn(dpa), "\n"), "CustomQuery")
	assert.Empty(t, NotActedOn(&v1alpha2.DatadogPodAutoscaler{Spec: v1alpha2.DatadogPodAutoscalerSpec{Owner: v1alpha2.DatadogPodAutoscalerLocalOwner}}))
}

// A DPA written as v1alpha1 with policy or targets lost them (the apiserver stores v1alpha2 and
// does not convert): managedFields says so, and Spec refuses it; fields both versions share do
// not count, nor do other versions, nor the status subresource.
func TestLostInConversion(t *testing.T) {
	entry := func(apiVersion, subresource, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: apiVersion,
			Subresource: subresource, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", ManagedFields: []metav1.ManagedFieldsEntry{
		entry("datadoghq.com/v1alpha1", "", `{"f:spec":{"f:targetRef":{},"f:constraints":{}}}`),
		entry("datadoghq.com/v1alpha2", "", `{"f:spec":{"f:policy":{}}}`),
		entry("datadoghq.com/v1alpha1", "status", `{"f:spec":{"f:targets":{}}}`),
	}}, Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"}}}
	assert.Empty(t, LostInConversion(dpa))
	assert.Nil(t, Spec(dpa, "lazyscale"))

	dpa.ManagedFields = append(dpa.ManagedFields, entry("datadoghq.com/v1alpha1", "", `{"f:spec":{"f:targets":{},"f:policy":{"f:applyMode":{}}}}`))
	assert.Equal(t, []string{"spec.policy", "spec.targets"}, LostInConversion(dpa))
	err := Spec(dpa, "lazyscale")
	require.NotNil(t, err)
	assert.Equal(t, ReasonSpecLostInConversion, err.Reason)

	dpa.ManagedFields = nil
	for _, ns := range []string{"kube-system", "lazyscale"} {
		dpa.Namespace = ns
		err := Spec(dpa, "lazyscale")
		require.NotNil(t, err, ns)
		assert.Equal(t, ReasonSkippedNamespace, err.Reason)
	}
}

// What one DPA may ask is bounded, and going over says which bound: each annotation lazyscale
// parses, the objectives, the containers of the constraints and of the target's template.
func TestBounds(t *testing.T) {
	base := func() *v1alpha2.DatadogPodAutoscaler {
		return &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: map[string]string{}},
			Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}}
	}
	require.Nil(t, Spec(base(), "lazyscale"))

	for _, a := range []string{v1alpha2.ForceResourcesAnnotation, v1alpha2.CustomRecommenderAnnotation, v1alpha2.ForceReplicasAnnotation} {
		dpa := base()
		dpa.Annotations[a] = strings.Repeat("x", MaxAnnotationBytes)
		assert.Nil(t, Spec(dpa, "lazyscale"), "%s at the bound", a)
		dpa.Annotations[a] += "x"
		err := Spec(dpa, "lazyscale")
		require.NotNil(t, err, a)
		assert.Equal(t, ReasonInvalidSpec, err.Reason)
		assert.Equal(t, fmt.Sprintf("annotation %s is %d bytes: at most %d", a, MaxAnnotationBytes+1, MaxAnnotationBytes), err.Message)
	}

	dpa := base()
	dpa.Spec.Constraints = &v1alpha2.DatadogPodAutoscalerConstraints{Containers: make([]v1alpha2.DatadogPodAutoscalerContainerConstraints, MaxContainers+1)}
	require.NotNil(t, Spec(dpa, "lazyscale"))
	assert.Contains(t, Spec(dpa, "lazyscale").Message, "257 containers, at most 256")
	dpa = base()
	dpa.Spec.Objectives = make([]v1alpha2.DatadogPodAutoscalerObjective, MaxObjectives+1)
	assert.Contains(t, Spec(dpa, "lazyscale").Message, "17 of them, at most 16")

	many := &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: make([]corev1.Container, MaxContainers+1)}}
	err := AgainstTemplate(base(), many)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Deployment web has 257 containers in its pod template: lazyscale autoscales at most 256")
}
