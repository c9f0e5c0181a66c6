package controller

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/apiobject"
	"github.com/lazyscale/lazyscale/comp/autoscaling/dpaview"
	"github.com/lazyscale/lazyscale/comp/core/telemetry"
)

// A direction whose policy the DPA does not set has no rules and no stabilization window: the
// recommendation is applied at once, as the Datadog Cluster Agent applies it (the HPA's
// defaults, a 300 s scale-down window and +100 %/+4 pods per 15 s, are not the DPA's).
var noPolicy = v1alpha2.DatadogPodAutoscalerScalingPolicy{}

func ptrTo[T any](v T) *T { return &v }

// timedRecommendation is one horizontal recommendation as the actuator saw it.
type timedRecommendation struct {
	at       time.Time
	replicas int32
}

// horizontalInput is everything one horizontal decision depends on.
type horizontalInput struct {
	now         time.Time
	current     int32 // the target's spec.replicas, from /scale
	recommended int32
	minReplicas *int32
	maxReplicas *int32
	scaleUp     v1alpha2.DatadogPodAutoscalerScalingPolicy
	scaleDown   v1alpha2.DatadogPodAutoscalerScalingPolicy
	// history holds earlier recommendations (for stabilization), oldest first.
	history []timedRecommendation
	// actions are the scaling actions taken so far (for the rules), any order.
	actions []v1alpha2.DatadogPodAutoscalerHorizontalAction
	// direction restricts a local (fallback) recommendation: ScaleUp or ScaleDown only; ""
	// or All for no restriction.
	direction v1alpha2.DatadogPodAutoscalerFallbackDirection
	// forced: the recommendation is the force-replicas annotation's count.
	forced bool
}

// horizontalDecision is the outcome.
type horizontalDecision struct {
	// Desired is the replica count to set; equal to current when nothing changes.
	Desired int32
	// Limited says why Desired differs from the recommendation ("" when it does not).
	Limited string
	// Disabled: the target is scaled to zero, which turns autoscaling off (as for the HPA).
	Disabled bool
	// Forced: Desired is the force-replicas count.
	Forced bool
}

// ForcedReplicasMessage is the HorizontalScalingLimited message while force-replicas pins the
// count, word for word as the Datadog Cluster Agent writes it (kubectl-datadog reads it back to
// confirm the pin).
func ForcedReplicasMessage(n int32) string {
	return fmt.Sprintf("replica count pinned to %d by the %s annotation", n, v1alpha2.ForceReplicasAnnotation)
}

// reasonForced: a value comes from a force-replicas or force-resources annotation.
const reasonForced = "ForcedByAnnotation"

func isDisabled(p v1alpha2.DatadogPodAutoscalerScalingPolicy) bool {
	return p.Strategy != nil && *p.Strategy == v1alpha2.DatadogPodAutoscalerDisabledStrategySelect
}

func policies(dpa *v1alpha2.DatadogPodAutoscaler) (up, down v1alpha2.DatadogPodAutoscalerScalingPolicy) {
	up, down = noPolicy, noPolicy
	if ap := dpa.Spec.ApplyPolicy; ap != nil {
		if ap.ScaleUp != nil {
			up = *ap.ScaleUp
		}
		if ap.ScaleDown != nil {
			down = *ap.ScaleDown
		}
	}
	return up, down
}

// decideHorizontal applies, in order: scaling to zero disables autoscaling; a current count
// outside [min, max] snaps to the bound; stabilization (scale-up takes the lowest, scale-down
// the highest recommendation within its window); the [min, max] clamp; the fallback
// direction of a local recommendation (a move the other way is not made); the rules of the
// direction (Pods or Percent per period, counted from the actions taken in that period,
// combined by the strategy Max, Min or Disabled).
//
// A forced count (force-replicas) is a break-glass override, as in the Cluster Agent: it is
// reached in one step, outside [min, max], without stabilization or rules, from zero replicas,
// and even when one direction is disabled; only both directions disabled keep it out.
func decideHorizontal(in horizontalInput) horizontalDecision {
	if in.forced {
		if isDisabled(in.scaleUp) && isDisabled(in.scaleDown) {
			return horizontalDecision{Desired: in.current, Limited: "force-replicas not applied: applyPolicy.scaleUp and scaleDown are both Disabled"}
		}
		return horizontalDecision{Desired: in.recommended, Limited: ForcedReplicasMessage(in.recommended), Forced: true}
	}
	if in.current == 0 {
		return horizontalDecision{Disabled: true, Desired: 0}
	}
	lo, hi := int32(1), int32(math.MaxInt32)
	if in.minReplicas != nil {
		lo = *in.minReplicas
	}
	if in.maxReplicas != nil {
		hi = *in.maxReplicas
	}
	if in.current < lo {
		return horizontalDecision{Desired: lo, Limited: fmt.Sprintf("current replicas %d below minReplicas %d", in.current, lo)}
	}
	if in.current > hi {
		return horizontalDecision{Desired: hi, Limited: fmt.Sprintf("current replicas %d above maxReplicas %d", in.current, hi)}
	}

	desired, limited := stabilize(in), ""
	if desired != in.recommended {
		limited = fmt.Sprintf("stabilized from %d to %d", in.recommended, desired)
	}
	switch {
	case desired < lo:
		desired, limited = lo, fmt.Sprintf("recommendation %d below minReplicas %d", in.recommended, lo)
	case desired > hi:
		desired, limited = hi, fmt.Sprintf("recommendation %d above maxReplicas %d", in.recommended, hi)
	}
	switch {
	case desired > in.current && in.direction == v1alpha2.DatadogPodAutoscalerFallbackDirectionScaleDown,
		desired < in.current && in.direction == v1alpha2.DatadogPodAutoscalerFallbackDirectionScaleUp:
		return horizontalDecision{Desired: in.current, Limited: fmt.Sprintf("local recommendation %d not applied: fallback.horizontal.direction is %s", in.recommended, in.direction)}
	}
	switch {
	case desired > in.current:
		if limit, why := ruleLimit(in, true); desired > limit {
			desired, limited = max(limit, in.current), why
		}
	case desired < in.current:
		if limit, why := ruleLimit(in, false); desired < limit {
			desired, limited = min(limit, in.current), why
		}
	}
	return horizontalDecision{Desired: desired, Limited: limited}
}

// stabilize keeps the count from moving on a recommendation that did not last: a scale-up
// goes no higher than the lowest recommendation within the scale-up window, a scale-down no
// lower than the highest within the scale-down window.
func stabilize(in horizontalInput) int32 {
	up, down := in.recommended, in.recommended
	upFrom := in.now.Add(-time.Duration(in.scaleUp.StabilizationWindowSeconds) * time.Second)
	downFrom := in.now.Add(-time.Duration(in.scaleDown.StabilizationWindowSeconds) * time.Second)
	for _, r := range in.history {
		if r.at.After(upFrom) {
			up = min(up, r.replicas)
		}
		if r.at.After(downFrom) {
			down = max(down, r.replicas)
		}
	}
	out := in.current
	if out < up {
		out = up
	}
	if out > down {
		out = down
	}
	return out
}

// changedWithin sums the replicas added (up) or removed (!up) by actions inside the period.
func changedWithin(actions []v1alpha2.DatadogPodAutoscalerHorizontalAction, from time.Time, up bool) int32 {
	var n int32
	for _, a := range actions {
		if !a.Time.Time.After(from) {
			continue
		}
		d := a.ToReplicas - a.FromReplicas
		if up && d > 0 {
			n += d
		}
		if !up && d < 0 {
			n -= d
		}
	}
	return n
}

// ruleLimit is the furthest the count may move in one direction now: each rule allows Value
// pods, or Value percent, of the count at the start of its period (the actions taken within
// the period undone); Max keeps the rule allowing the biggest move, Min the smallest, Disabled
// none at all.
func ruleLimit(in horizontalInput, up bool) (int32, string) {
	p, dir := in.scaleDown, "down"
	if up {
		p, dir = in.scaleUp, "up"
	}
	if isDisabled(p) {
		return in.current, "scale-" + dir + " disabled by applyPolicy.scale" + strings.ToUpper(dir[:1]) + dir[1:] + ".strategy"
	}
	if len(p.Rules) == 0 {
		if up {
			return math.MaxInt32, ""
		}
		return math.MinInt32, ""
	}
	// The biggest move is the highest count up, the lowest down.
	bigger := func(a, b int32) bool { return (a > b) == up }
	smallest := p.Strategy != nil && *p.Strategy == v1alpha2.DatadogPodAutoscalerMinChangeStrategySelect
	limit, found := int32(0), false
	for _, r := range p.Rules {
		moved := changedWithin(in.actions, in.now.Add(-time.Duration(r.PeriodSeconds)*time.Second), up)
		var allowed int32
		if up {
			start := in.current - moved
			if r.Type == v1alpha2.DatadogPodAutoscalerPodsScalingRuleType {
				allowed = start + r.Value
			} else {
				allowed = int32(math.Ceil(float64(start) * (1 + float64(r.Value)/100)))
			}
		} else {
			start := in.current + moved
			if r.Type == v1alpha2.DatadogPodAutoscalerPodsScalingRuleType {
				allowed = start - r.Value
			} else {
				allowed = int32(math.Floor(float64(start) * (1 - float64(r.Value)/100)))
			}
			allowed = max(allowed, 0)
		}
		if !found || bigger(allowed, limit) != smallest {
			limit, found = allowed, true
		}
	}
	return limit, fmt.Sprintf("scale-%s limited to %d by applyPolicy.scale%s rules", dir, limit, strings.ToUpper(dir[:1])+dir[1:])
}

// maxLastActions is how many scaling actions status.horizontal.lastActions keeps.
const maxLastActions = 10

// horizontal records the winning horizontal recommendation and scales the target through its
// /scale subresource when the decision says so. Preview records only; pause never gets here.
// known is the target's /scale when the caller has read it already, else nil.
func (c *Controller) horizontal(ctx context.Context, key string, dpa *v1alpha2.DatadogPodAutoscaler, g gathered, known *targetScale) error {
	st := &dpa.Status
	now := c.now()
	if msg, err := c.conflictingHPA(ctx, dpa); err != nil {
		c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToScale, false, "FailedListHPAs", err.Error())
		return err
	} else if msg != "" {
		c.setCondition(dpa, v1alpha2.ConditionError, true, reasonHPAConflict, msg)
		c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToScale, false, reasonHPAConflict, msg)
		return nil
	}
	sel := selectHorizontal(dpa, g, now)
	rec := sel.rec
	if rec == nil {
		c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToRecommend, false, sel.reason, sel.message)
		return nil
	}
	c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToRecommend, true, sel.reason, sel.message)
	if st.Horizontal == nil {
		st.Horizontal = &v1alpha2.DatadogPodAutoscalerHorizontalStatus{}
	}
	if t := st.Horizontal.Target; t == nil || t.DesiredReplicas != *rec.Replicas || t.Source != rec.Source {
		st.Horizontal.Target = &v1alpha2.DatadogPodAutoscalerHorizontalTargetStatus{Source: rec.Source,
			GeneratedAt: metav1.NewTime(rec.Timestamp.Truncate(time.Second)), DesiredReplicas: *rec.Replicas}
	}

	scale := known
	if scale == nil {
		var err error
		if scale, err = c.getScale(ctx, dpa); err != nil {
			c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToScale, false, "FailedGetScale", err.Error())
			return err
		}
	}
	gr, sc := scale.gr, scale.sc
	up, down := policies(dpa)
	history := c.recordRecommendation(key, now, sc.Spec.Replicas, *rec.Replicas, up, down)
	d := decideHorizontal(horizontalInput{now: now, current: sc.Spec.Replicas, recommended: *rec.Replicas,
		minReplicas: constraintsMin(dpa), maxReplicas: constraintsMax(dpa), scaleUp: up, scaleDown: down,
		history: history, actions: st.Horizontal.LastActions, direction: sel.direction,
		forced: rec.Source == v1alpha2.DatadogPodAutoscalerManualValueSource})
	switch {
	case d.Forced:
		c.setCondition(dpa, v1alpha2.ConditionHorizontalScalingLimited, true, reasonForced, d.Limited)
	case d.Limited != "":
		c.setCondition(dpa, v1alpha2.ConditionHorizontalScalingLimited, true, reasonLimited, d.Limited)
	default:
		c.setCondition(dpa, v1alpha2.ConditionHorizontalScalingLimited, false, reasonWithinBounds, "")
	}
	switch {
	case d.Disabled:
		c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToScale, false, "ScalingDisabled", "the target has 0 replicas: scaling is off until it is scaled up by hand")
		return nil
	case dpaview.IsPreview(dpa):
		c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToScale, false, reasonPreview, "applyPolicy.mode is Preview: the recommendation is only recorded")
		return nil
	case d.Desired == sc.Spec.Replicas:
		c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToScale, true, "ReadyForNewScale", "")
		return nil
	}
	from := sc.Spec.Replicas
	sc.Spec.Replicas = d.Desired
	if _, err := c.scales.Scales(dpa.Namespace).Update(ctx, gr, sc, metav1.UpdateOptions{FieldManager: apiobject.FieldManager}); err != nil {
		c.metrics.scalings.WithLabelValues(telemetry.ResultError).Inc()
		c.recorder.Eventf(dpa, corev1.EventTypeWarning, "FailedScale", "scale %s %s from %d to %d failed: %v", dpa.Spec.TargetRef.Kind, dpa.Spec.TargetRef.Name, from, d.Desired, err)
		c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToScale, false, "FailedScale", err.Error())
		return fmt.Errorf("scale %s: %w", key, err)
	}
	c.metrics.scalings.WithLabelValues(telemetry.ResultSuccess).Inc()
	c.recorder.Eventf(dpa, corev1.EventTypeNormal, "SuccessfulScale", "scaled %s %s from %d to %d (recommended %d)", dpa.Spec.TargetRef.Kind, dpa.Spec.TargetRef.Name, from, d.Desired, *rec.Replicas)
	c.log.Info("scaled", zap.String("dpa", key), zap.Int32("from", from), zap.Int32("to", d.Desired), zap.String("limited", d.Limited))
	action := v1alpha2.DatadogPodAutoscalerHorizontalAction{Time: metav1.NewTime(now.Truncate(time.Second)), FromReplicas: from,
		RecommendedReplicas: ptrTo(*rec.Replicas), ToReplicas: d.Desired}
	if d.Limited != "" {
		action.LimitedReason = ptrTo(d.Limited)
	}
	st.Horizontal.LastActions = append(st.Horizontal.LastActions, action)
	if n := len(st.Horizontal.LastActions); n > maxLastActions {
		st.Horizontal.LastActions = st.Horizontal.LastActions[n-maxLastActions:]
	}
	c.setCondition(dpa, v1alpha2.ConditionHorizontalAbleToScale, true, "SucceededScale", fmt.Sprintf("scaled from %d to %d", from, d.Desired))
	return nil
}

// recordRecommendation returns the DPA's recent recommendations (for stabilization) and adds
// this one. A DPA this leader has no history of yet (it just became leader, or the DPA is new)
// starts with the current count as a recommendation made now, as the HPA does: a new leader
// scales down only after a full scale-down window of its own recommendations, never at once
// on a count its predecessor's window was holding back.
func (c *Controller) recordRecommendation(key string, now time.Time, current, recommended int32, up, down v1alpha2.DatadogPodAutoscalerScalingPolicy) []timedRecommendation {
	c.historyMu.Lock()
	defer c.historyMu.Unlock()
	if _, seen := c.history[key]; !seen {
		c.history[key] = []timedRecommendation{{at: now, replicas: current}}
	}
	history := c.prunedHistory(key, now, up, down)
	c.history[key] = append(history, timedRecommendation{at: now, replicas: recommended})
	return history
}

// prunedHistory drops recommendations older than both windows. Callers hold historyMu.
func (c *Controller) prunedHistory(key string, now time.Time, up, down v1alpha2.DatadogPodAutoscalerScalingPolicy) []timedRecommendation {
	keep := time.Duration(max(up.StabilizationWindowSeconds, down.StabilizationWindowSeconds)) * time.Second
	h := c.history[key]
	i := 0
	for i < len(h) && now.Sub(h[i].at) > keep {
		i++
	}
	return slices.Clone(h[i:])
}

func constraintsMin(dpa *v1alpha2.DatadogPodAutoscaler) *int32 {
	if dpa.Spec.Constraints == nil {
		return nil
	}
	return dpa.Spec.Constraints.MinReplicas
}

func constraintsMax(dpa *v1alpha2.DatadogPodAutoscaler) *int32 {
	if dpa.Spec.Constraints == nil {
		return nil
	}
	return dpa.Spec.Constraints.MaxReplicas
}

// reasonHPAConflict: a HorizontalPodAutoscaler scales the DPA's target too.
const reasonHPAConflict = "ConflictingHorizontalPodAutoscaler"

// conflictingHPA says which HorizontalPodAutoscaler of the DPA's namespace also scales its
// target ("" when none does, or when the DPA's own scaling is disabled both ways). Two
// autoscalers writing one /scale fight: lazyscale then takes no horizontal action and says so.
// The list is served from the apiserver's watch cache (resourceVersion 0).
func (c *Controller) conflictingHPA(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler) (string, error) {
	up, down := policies(dpa)
	if isDisabled(up) && isDisabled(down) {
		return "", nil
	}
	hpas, err := c.kube.AutoscalingV2().HorizontalPodAutoscalers(dpa.Namespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return "", fmt.Errorf("list HorizontalPodAutoscalers: %w", err)
	}
	t := dpa.Spec.TargetRef
	group := func(apiVersion string) string {
		gv, _ := schema.ParseGroupVersion(apiVersion)
		return gv.Group
	}
	for _, h := range hpas.Items {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind == t.Kind && ref.Name == t.Name && group(ref.APIVersion) == group(t.APIVersion) {
			return fmt.Sprintf("HorizontalPodAutoscaler %s also scales %s %s: lazyscale takes no horizontal action while it does (delete the HPA, or set applyPolicy.scaleUp and scaleDown strategy Disabled)",
				h.Name, t.Kind, t.Name), nil
		}
	}
	return "", nil
}
