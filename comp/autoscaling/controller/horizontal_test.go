package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// horizontalSim plays recommendations against a fake clock, recording actions and history as
// the controller does (without the first-look seed of recordRecommendation, tested on its own).
type horizontalSim struct {
	now      time.Time
	current  int32
	min, max *int32
	up, down v1alpha2.DatadogPodAutoscalerScalingPolicy
	history  []timedRecommendation
	actions  []v1alpha2.DatadogPodAutoscalerHorizontalAction
}

func (s *horizontalSim) step(after time.Duration, recommended int32) horizontalDecision {
	s.now = s.now.Add(after)
	d := decideHorizontal(horizontalInput{now: s.now, current: s.current, recommended: recommended, minReplicas: s.min, maxReplicas: s.max,
		scaleUp: s.up, scaleDown: s.down, history: s.history, actions: s.actions})
	s.history = append(s.history, timedRecommendation{at: s.now, replicas: recommended})
	if d.Desired != s.current && !d.Disabled {
		s.actions = append(s.actions, v1alpha2.DatadogPodAutoscalerHorizontalAction{Time: metav1.NewTime(s.now), FromReplicas: s.current, ToReplicas: d.Desired})
		s.current = d.Desired
	}
	return d
}

// The HPA's default policies, written out as a DPA would set them: scale-up +100 % or +4 pods
// per 15 s (Max), scale-down -100 % per 15 s after a 300 s window.
var (
	hpaLikeUp = v1alpha2.DatadogPodAutoscalerScalingPolicy{
		Strategy: ptrTo(v1alpha2.DatadogPodAutoscalerMaxChangeStrategySelect),
		Rules: []v1alpha2.DatadogPodAutoscalerScalingRule{
			{Type: v1alpha2.DatadogPodAutoscalerPercentScalingRuleType, Value: 100, PeriodSeconds: 15},
			{Type: v1alpha2.DatadogPodAutoscalerPodsScalingRuleType, Value: 4, PeriodSeconds: 15},
		},
	}
	hpaLikeDown = v1alpha2.DatadogPodAutoscalerScalingPolicy{
		Strategy:                   ptrTo(v1alpha2.DatadogPodAutoscalerMaxChangeStrategySelect),
		Rules:                      []v1alpha2.DatadogPodAutoscalerScalingRule{{Type: v1alpha2.DatadogPodAutoscalerPercentScalingRuleType, Value: 100, PeriodSeconds: 15}},
		StabilizationWindowSeconds: 300,
	}
)

// Without policies (the DPA sets neither scaleUp nor scaleDown) a recommendation is applied at
// once, both ways, as the Cluster Agent applies it.
func TestHorizontalWithoutPoliciesAppliesAtOnce(t *testing.T) {
	dpa := &v1alpha2.DatadogPodAutoscaler{}
	up, down := policies(dpa)
	s := &horizontalSim{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), current: 2, up: up, down: down}
	for _, rec := range []int32{10, 3, 12, 1} {
		d := s.step(time.Second, rec)
		assert.Equal(t, rec, d.Desired)
		assert.Empty(t, d.Limited)
	}
}

func TestHorizontalStepByStepWithHPALikePolicies(t *testing.T) {
	s := &horizontalSim{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), current: 2, up: hpaLikeUp, down: hpaLikeDown}
	d := s.step(0, 10)
	assert.Equal(t, int32(6), d.Desired, "+4 pods beats +100%% (2 → 4): the Max strategy allows 6")
	assert.Contains(t, d.Limited, "scale-up limited to 6")
	d = s.step(5*time.Second, 10)
	assert.Equal(t, int32(6), d.Desired, "the 15 s period still counts the +4")
	d = s.step(11*time.Second, 10)
	assert.Equal(t, int32(10), d.Desired, "a new period: 6 → 12 allowed, the recommendation 10 wins")
	assert.Empty(t, d.Limited)

	d = s.step(10*time.Second, 3)
	assert.Equal(t, int32(10), d.Desired, "scale-down stabilization: 10 was recommended within 5 minutes")
	assert.Contains(t, d.Limited, "stabilized from 3 to 10")
	d = s.step(289*time.Second, 3)
	assert.Equal(t, int32(10), d.Desired, "the last 10 is 299 s old, still inside the window")
	d = s.step(2*time.Second, 3)
	assert.Equal(t, int32(3), d.Desired, "every recommendation of the window says 3")
}

func TestHorizontalBoundsAndStrategies(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	two, five := int32(2), int32(5)
	base := horizontalInput{now: now, current: 3, minReplicas: &two, maxReplicas: &five, scaleUp: hpaLikeUp, scaleDown: hpaLikeDown}
	tests := []struct {
		name    string
		mutate  func(*horizontalInput)
		want    int32
		limited string
	}{
		{"zero disables", func(in *horizontalInput) { in.current = 0; in.recommended = 4 }, 0, ""},
		{"below min snaps up", func(in *horizontalInput) { in.current = 1; in.recommended = 1 }, 2, "below minReplicas 2"},
		{"above max snaps down", func(in *horizontalInput) { in.current = 9; in.recommended = 9 }, 5, "above maxReplicas 5"},
		{"recommendation clamped to max", func(in *horizontalInput) { in.recommended = 50 }, 5, "above maxReplicas 5"},
		{"recommendation clamped to min", func(in *horizontalInput) { in.recommended = 0; in.scaleDown.StabilizationWindowSeconds = 0 }, 2, "below minReplicas 2"},
		{"scale-up disabled", func(in *horizontalInput) {
			in.recommended = 5
			in.scaleUp = v1alpha2.DatadogPodAutoscalerScalingPolicy{Strategy: ptrTo(v1alpha2.DatadogPodAutoscalerDisabledStrategySelect)}
		}, 3, "scale-up disabled"},
		{"Min strategy picks the smaller step", func(in *horizontalInput) {
			in.maxReplicas = nil
			in.recommended = 20
			in.scaleUp = v1alpha2.DatadogPodAutoscalerScalingPolicy{Strategy: ptrTo(v1alpha2.DatadogPodAutoscalerMinChangeStrategySelect),
				Rules: []v1alpha2.DatadogPodAutoscalerScalingRule{{Type: "Pods", Value: 1, PeriodSeconds: 60}, {Type: "Percent", Value: 100, PeriodSeconds: 60}}}
		}, 4, "scale-up limited to 4"},
		// force-replicas: one step, outside the bounds, from zero, past one disabled direction.
		{"forced above max", func(in *horizontalInput) { in.forced = true; in.recommended = 9 }, 9, "replica count pinned to 9 by the autoscaling.datadoghq.com/force-replicas annotation"},
		{"forced from zero", func(in *horizontalInput) { in.forced = true; in.current = 0; in.recommended = 4 }, 4, "pinned to 4"},
		{"forced past a disabled scale-down", func(in *horizontalInput) {
			in.forced, in.recommended = true, 1
			in.scaleDown = v1alpha2.DatadogPodAutoscalerScalingPolicy{Strategy: ptrTo(v1alpha2.DatadogPodAutoscalerDisabledStrategySelect)}
		}, 1, "pinned to 1"},
		{"forced but both directions disabled", func(in *horizontalInput) {
			in.forced, in.recommended = true, 5
			in.scaleUp = v1alpha2.DatadogPodAutoscalerScalingPolicy{Strategy: ptrTo(v1alpha2.DatadogPodAutoscalerDisabledStrategySelect)}
			in.scaleDown = in.scaleUp
		}, 3, "both Disabled"},
		{"scale-down by at most 1 pod per minute", func(in *horizontalInput) {
			in.recommended = 2
			in.scaleDown = v1alpha2.DatadogPodAutoscalerScalingPolicy{Rules: []v1alpha2.DatadogPodAutoscalerScalingRule{{Type: "Pods", Value: 1, PeriodSeconds: 60}}}
			in.actions = []v1alpha2.DatadogPodAutoscalerHorizontalAction{{Time: metav1.NewTime(now.Add(-30 * time.Second)), FromReplicas: 4, ToReplicas: 3}}
		}, 3, "scale-down limited to 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.mutate(&in)
			d := decideHorizontal(in)
			assert.Equal(t, tt.want, d.Desired)
			assert.Contains(t, d.Limited, tt.limited)
			assert.Equal(t, tt.name == "zero disables", d.Disabled)
			assert.Equal(t, in.forced && tt.name != "forced but both directions disabled", d.Forced)
		})
	}
}
