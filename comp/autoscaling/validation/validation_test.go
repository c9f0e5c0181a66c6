package validation

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

func TestNotActedOnNamesEachFieldLazyscaleKeepsButIgnores(t *testing.T) {
	yes := true
	dpa := &v1alpha2.DatadogPodAutoscaler{Spec: v1alpha2.DatadogPodAutoscalerSpec{
		Owner:      v1alpha2.DatadogPodAutoscalerRemoteOwner,
		Objectives: []v1alpha2.DatadogPodAutoscalerObjective{{Type: v1alpha2.DatadogPodAutoscalerCustomQueryObjectiveType}},
		ApplyPolicy: &v1alpha2.DatadogPodAutoscalerApplyPolicy{Update: &v1alpha2.DatadogPodAutoscalerUpdatePolicy{
			Strategy: v1alpha2.DatadogPodAutoscalerTriggerRolloutUpdateStrategy, ResizePendingPeriod: 60}},
		Options: &v1alpha2.DatadogPodAutoscalerOptions{Burstable: &yes},
	}}
	got := strings.Join(NotActedOn(dpa), "\n")
	for _, want := range []string{"owner Remote", "objectives[0] (CustomQuery)", "resizePendingPeriod", "options.burstable"} {
		assert.Contains(t, got, want)
	}

	// An external recommender can serve the custom query; a Local DPA with what lazyscale
	// does act on has nothing to report.
	dpa.Annotations = map[string]string{v1alpha2.CustomRecommenderAnnotation: `{"endpoint": "http://r.svc/x"}`}
	assert.NotContains(t, strings.Join(NotActedOn(dpa), "\n"), "CustomQuery")
	assert.Empty(t, NotActedOn(&v1alpha2.DatadogPodAutoscaler{Spec: v1alpha2.DatadogPodAutoscalerSpec{Owner: v1alpha2.DatadogPodAutoscalerLocalOwner}}))
}
