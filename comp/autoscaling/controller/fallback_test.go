package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

func answer(src v1alpha2.DatadogPodAutoscalerValueSource, at time.Time, n int32) *def.Recommendation {
	return &def.Recommendation{Source: src, SourceName: string(src), Timestamp: at, Replicas: &n}
}

func TestSelectHorizontal(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ext, loc, man := v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, v1alpha2.DatadogPodAutoscalerLocalValueSource, v1alpha2.DatadogPodAutoscalerManualValueSource
	disabled := &v1alpha2.DatadogFallbackPolicy{Horizontal: v1alpha2.DatadogPodAutoscalerHorizontalFallbackPolicy{Enabled: false}}
	short := &v1alpha2.DatadogFallbackPolicy{Horizontal: v1alpha2.DatadogPodAutoscalerHorizontalFallbackPolicy{Enabled: true,
		Direction: v1alpha2.DatadogPodAutoscalerFallbackDirectionAll, Triggers: v1alpha2.HorizontalFallbackTriggers{StaleRecommendationThresholdSeconds: 100}}}
	for _, tc := range []struct {
		name     string
		fallback *v1alpha2.DatadogFallbackPolicy
		answers  []*def.Recommendation
		status   *v1alpha2.DatadogPodAutoscalerHorizontalTargetStatus
		source   v1alpha2.DatadogPodAutoscalerValueSource // "" for none
		reason   string
		dir      v1alpha2.DatadogPodAutoscalerFallbackDirection
	}{
		{name: "manual wins", answers: []*def.Recommendation{answer(man, now, 2), answer(ext, now, 3), answer(loc, now, 4)}, source: man, reason: reasonReceived},
		{name: "fresh external", answers: []*def.Recommendation{answer(ext, now.Add(-599*time.Second), 3), answer(loc, now, 4)}, source: ext, reason: reasonReceived},
		{name: "stale external: local, ScaleUp by default", answers: []*def.Recommendation{answer(ext, now.Add(-601*time.Second), 3), answer(loc, now, 4)}, source: loc, reason: reasonLocalFallback, dir: v1alpha2.DatadogPodAutoscalerFallbackDirectionScaleUp},
		{name: "own threshold and direction", fallback: short, answers: []*def.Recommendation{answer(ext, now.Add(-101*time.Second), 3), answer(loc, now, 4)}, source: loc, reason: reasonLocalFallback, dir: v1alpha2.DatadogPodAutoscalerFallbackDirectionAll},
		{name: "no external: local", answers: []*def.Recommendation{answer(loc, now, 4)}, source: loc, reason: reasonLocalFallback, dir: v1alpha2.DatadogPodAutoscalerFallbackDirectionScaleUp},
		{name: "fallback disabled, stale external: nothing", fallback: disabled, answers: []*def.Recommendation{answer(ext, now.Add(-time.Hour), 3), answer(loc, now, 4)}, reason: reasonStale},
		{name: "external failing: its last value while fresh", answers: []*def.Recommendation{answer(loc, now, 4)},
			status: &v1alpha2.DatadogPodAutoscalerHorizontalTargetStatus{Source: ext, GeneratedAt: metav1.NewTime(now.Add(-time.Minute)), DesiredReplicas: 5}, source: ext, reason: reasonReceived},
		{name: "nothing", reason: reasonNoSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dpa := &v1alpha2.DatadogPodAutoscaler{Spec: v1alpha2.DatadogPodAutoscalerSpec{Fallback: tc.fallback}}
			if tc.status != nil {
				dpa.Status.Horizontal = &v1alpha2.DatadogPodAutoscalerHorizontalStatus{Target: tc.status}
			}
			g := gathered{horizontal: map[v1alpha2.DatadogPodAutoscalerValueSource]*def.Recommendation{}, applied: len(tc.answers) > 0}
			for _, a := range tc.answers {
				g.horizontal[a.Source] = a
			}
			sel := selectHorizontal(dpa, g, now)
			assert.Equal(t, tc.reason, sel.reason, sel.message)
			assert.Equal(t, tc.dir, sel.direction)
			if tc.source == "" {
				assert.Nil(t, sel.rec)
				return
			}
			if assert.NotNil(t, sel.rec) {
				assert.Equal(t, tc.source, sel.rec.Source)
			}
		})
	}
}

// A local recommendation only moves the count in the fallback's direction.
func TestFallbackDirection(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	base := horizontalInput{now: now, current: 4, scaleUp: v1alpha2.DatadogPodAutoscalerScalingPolicy{}, scaleDown: v1alpha2.DatadogPodAutoscalerScalingPolicy{}}
	up, down, all := v1alpha2.DatadogPodAutoscalerFallbackDirectionScaleUp, v1alpha2.DatadogPodAutoscalerFallbackDirectionScaleDown, v1alpha2.DatadogPodAutoscalerFallbackDirectionAll
	for _, tc := range []struct {
		dir         v1alpha2.DatadogPodAutoscalerFallbackDirection
		recommended int32
		want        int32
		limited     bool
	}{{up, 6, 6, false}, {up, 2, 4, true}, {down, 2, 2, false}, {down, 6, 4, true}, {all, 2, 2, false}, {all, 6, 6, false}} {
		in := base
		in.direction, in.recommended = tc.dir, tc.recommended
		d := decideHorizontal(in)
		assert.Equal(t, tc.want, d.Desired, "%s %d", tc.dir, tc.recommended)
		assert.Equal(t, tc.limited, d.Limited != "", d.Limited)
	}
}

// A leader without history of a DPA treats the current count as a recommendation made now:
// its first scale-down waits for a full window.
func TestNewLeaderWaitsAWindowBeforeScalingDown(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c := &Controller{history: map[string][]timedRecommendation{}}
	up, down := hpaLikeUp, hpaLikeDown // a 300 s scale-down window
	decide := func(at time.Time) int32 {
		h := c.recordRecommendation("shop/web", at, 10, 4, up, down)
		return decideHorizontal(horizontalInput{now: at, current: 10, recommended: 4, scaleUp: up, scaleDown: down, history: h}).Desired
	}
	assert.Equal(t, int32(10), decide(now), "first look: held by the current count")
	assert.Equal(t, int32(10), decide(now.Add(299*time.Second)), "still within the window")
	assert.Equal(t, int32(4), decide(now.Add(301*time.Second)), "a full window of 4s: scaled down")
}
