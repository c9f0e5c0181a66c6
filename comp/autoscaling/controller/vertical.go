package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/apiobject"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/dpaview"
	"github.com/lazyscale/lazyscale/comp/autoscaling/podwatcher"
	"github.com/lazyscale/lazyscale/comp/core/telemetry"
)

// recommendVertical constrains the winning vertical values and records them in status. It
// returns the recommendation version to apply, "" if none.
func (c *Controller) recommendVertical(dpa *v1alpha2.DatadogPodAutoscaler, g gathered, containers []corev1.Container) string {
	rec, applied, errs := g.vertical, g.applied, g.errs
	st := &dpa.Status
	switch {
	case rec == nil && !applied:
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToRecommend, false, reasonNoSource,
			"no recommendation source applies: annotate the DPA with "+v1alpha2.CustomRecommenderAnnotation+" or "+v1alpha2.ForceResourcesAnnotation)
		if st.Vertical != nil {
			st.Vertical.Target = nil
		}
		return ""
	case rec == nil:
		reason, msg := reasonFailed, strings.Join(errs, "; ")
		if msg == "" && len(g.pending) > 0 {
			reason, msg = reasonPending, strings.Join(g.pending, "; ")
		}
		if msg == "" {
			msg = "the sources returned no vertical values"
		}
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToRecommend, false, reason, msg)
		// Keep the last recommendation: new pods keep getting it while the source is down.
		if st.Vertical != nil && st.Vertical.Target != nil {
			return st.Vertical.Target.Version
		}
		return ""
	}
	desired, limited := constrain(dpa, rec.Containers, containers)
	if rec.Source == v1alpha2.DatadogPodAutoscalerManualValueSource {
		// Worded as the Cluster Agent words it: kubectl-datadog reads it back to confirm.
		names := make([]string, 0, len(rec.Containers))
		for _, ct := range rec.Containers {
			names = append(names, ct.Name)
		}
		msg := "resources overridden for containers " + strings.Join(names, ", ") + " by the " + v1alpha2.ForceResourcesAnnotation + " annotation"
		c.setCondition(dpa, v1alpha2.ConditionVerticalScalingLimited, true, reasonForced, strings.Join(append([]string{msg}, limited...), "; "))
	} else if len(limited) > 0 {
		c.setCondition(dpa, v1alpha2.ConditionVerticalScalingLimited, true, reasonLimited, strings.Join(limited, "; "))
	} else {
		c.setCondition(dpa, v1alpha2.ConditionVerticalScalingLimited, false, reasonWithinBounds, "")
	}
	if len(desired) == 0 {
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToRecommend, false, reasonNothingAllowed, "the "+rec.SourceName+" recommendation has nothing the constraints allow")
		if st.Vertical != nil {
			st.Vertical.Target = nil
		}
		return ""
	}
	c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToRecommend, true, reasonReceived, "from the "+rec.SourceName+" source")
	burstable := c.burstable(dpa)
	if o := st.Options; o == nil || o.Burstable == nil || *o.Burstable != burstable {
		st.Options = &v1alpha2.DatadogPodAutoscalerOptionsStatus{Burstable: &burstable}
	}
	version := recommendationVersion(desired, burstable)
	if st.Vertical == nil {
		st.Vertical = &v1alpha2.DatadogPodAutoscalerVerticalStatus{}
	}
	if st.Vertical.Target == nil || st.Vertical.Target.Version != version || st.Vertical.Target.Source != rec.Source {
		// Only a new recommendation moves generatedAt: an unchanged one writes nothing.
		cpu, memory := podRequests(desired)
		st.Vertical.Target = &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{
			Source: rec.Source, GeneratedAt: metav1.NewTime(rec.Timestamp.Truncate(time.Second)),
			Version: version, DesiredResources: desired, PodCPURequest: cpu, PodMemoryRequest: memory,
		}
	}
	return version
}

// podRequests sums the recommended CPU and memory requests over the containers (the status's
// podCPURequest and podMemoryRequest).
func podRequests(desired []v1alpha2.DatadogPodAutoscalerContainerResources) (cpu, memory resource.Quantity) {
	cpu, memory = *resource.NewMilliQuantity(0, resource.DecimalSI), *resource.NewQuantity(0, resource.BinarySI)
	for _, d := range desired {
		if q, ok := d.Requests[corev1.ResourceCPU]; ok {
			cpu.Add(q)
		}
		if q, ok := d.Requests[corev1.ResourceMemory]; ok {
			memory.Add(q)
		}
	}
	return cpu, memory
}

// applyVertical brings the workload's pods to the recommendation: in place where the DPA allows
// it (update.strategy Auto), else, or when a resize cannot be done in place, by a rollout.
func (c *Controller) applyVertical(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, target def.Target, w *workload, version string, counts podwatcher.Counts) (time.Duration, error) {
	// How many pods carry the recommendation, whatever the mode.
	if t := dpa.Status.Vertical.Target; t.Scaled == nil || *t.Scaled != counts.ByRecID[version] {
		scaled := counts.ByRecID[version]
		t.Scaled = &scaled
	}
	switch {
	case dpaview.IsPreview(dpa):
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, false, reasonPreview, "applyPolicy.mode is Preview: the recommendation is only recorded")
		return 0, nil
	case dpaview.RolloutsDisabled(dpa):
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, false, reasonUpdatesDisabled, "applyPolicy.update.strategy is Disabled: the recommendation is only recorded; no rollout, and new pods are not patched")
		return 0, nil
	}
	st := dpa.Status.Vertical
	now := c.now()
	st.LastAction = rolloutFromTemplate(st.LastAction, w.template, version)
	last := st.LastAction
	rolledOut := last != nil && last.Version == version && last.Type == reasonRolloutTriggered
	if inPlace(dpa) && !rolledOut {
		resizing := last != nil && last.Version == version && last.Type == actionResizeTriggered
		if counts.ByRecID[version] == counts.Current && !resizing {
			c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reasonUpToDate, "all pods carry the recommendation")
			return 0, nil
		}
		if !c.published(dpa, version, "resize") {
			return publishRetry, nil
		}
		after, fallback, err := c.resizeVertical(ctx, dpa, target, w, version)
		if fallback == "" {
			return after, err
		}
		c.log.Info("in-place resize not possible: rolling out instead", zap.String("target", target.String()), zap.String("why", fallback))
		return c.rollout(ctx, dpa, target, version, now, "in-place resize not possible: "+fallback)
	}
	d := decideRollout(version, w.template.Annotations[v1alpha2.RecommendationIDAnnotation], counts, last, c.cfg.RolloutInterval, now)
	if !d.Trigger {
		reason := reasonUpToDate
		if d.Retry > 0 {
			reason = reasonRolloutPending
		}
		// A stable message: a countdown would rewrite the status on every pass.
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reason, stableRolloutMessage(d, c.cfg.RolloutInterval))
		return d.Retry, nil
	}
	if !c.published(dpa, version, "rollout") {
		return publishRetry, nil
	}
	return c.rollout(ctx, dpa, target, version, now, d.Reason)
}

// rollout triggers a rollout of the target for the recommendation and records it. It waits
// until the webhook's entry covers the target (admission.scope workloads or namespaces):
// before that the apiserver would not send the rollout's new pods to the webhook.
func (c *Controller) rollout(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, target def.Target, version string, now time.Time, why string) (time.Duration, error) {
	if !c.scope.Covers(admissiondef.Workload(target)) {
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reasonRolloutPending,
			"the webhook's entry does not cover "+target.Kind+" "+target.Namespace+"/"+target.Name+" yet; the rollout follows once it does")
		return publishRetry, nil
	}
	if err := c.triggerRollout(ctx, target, version, now); err != nil {
		c.metrics.rollouts.WithLabelValues(telemetry.ResultError).Inc()
		c.recorder.Eventf(dpa, corev1.EventTypeWarning, "FailedTriggerRollout", "rollout of %s %s for recommendation %s failed: %v", target.Kind, target.Name, version, err)
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, false, reasonRolloutFailed, err.Error())
		return 0, fmt.Errorf("rollout %s: %w", target, err)
	}
	c.metrics.rollouts.WithLabelValues(telemetry.ResultSuccess).Inc()
	c.recorder.Eventf(dpa, corev1.EventTypeNormal, "SuccessfulTriggerRollout", "rolled out %s %s for recommendation %s: %s", target.Kind, target.Name, version, why)
	c.log.Info("vertical rollout triggered", zap.String("target", target.String()), zap.String("rec_id", version), zap.String("why", why))
	dpa.Status.Vertical.LastAction = &v1alpha2.DatadogPodAutoscalerVerticalAction{Time: metav1.NewTime(now.Truncate(time.Second)), Version: version, Type: reasonRolloutTriggered}
	c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reasonRolloutTriggered, "rollout triggered for recommendation "+version)
	return c.cfg.RolloutInterval, nil
}

// publishRetry is when a rollout waiting for its recommendation to reach the view is looked
// at again, should the status write's own update event not come first.
const publishRetry = time.Second

// published says whether the view the webhooks patch from (the shared DPA informer) has the DPA
// Active with recommendation version in its status. The webhooks patch new pods from the status
// they read: a rollout (or resize) follows once it is there, or the first new pods would carry
// the template's rec-id without its resources. Until then the condition says the action (a
// "rollout" or "resize") is pending.
func (c *Controller) published(dpa *v1alpha2.DatadogPodAutoscaler, version, action string) bool {
	seen := c.view.Get(dpa.Namespace + "/" + dpa.Name)
	if seen != nil && v1alpha2.IsConditionTrue(seen.Status.Conditions, v1alpha2.ConditionActive) {
		if v := seen.Status.Vertical; v != nil && v.Target != nil && v.Target.Version == version {
			return true
		}
	}
	c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reasonRolloutPending,
		"recommendation "+version+" is written to the status first, for the webhooks; the "+action+" follows")
	return false
}

// rolloutFromTemplate returns the last vertical action, or the rollout the target's pod template
// records when it is newer: the template names the recommendation and when it was rolled out
// (RolloutAtAnnotation), and it is read fresh from the apiserver, where the status comes from
// the view. Right after a rollout the view may not hold the status that records it yet (or the
// leader that made it died before writing it): acting on the view alone would roll out again.
func rolloutFromTemplate(last *v1alpha2.DatadogPodAutoscalerVerticalAction, template *corev1.PodTemplateSpec, version string) *v1alpha2.DatadogPodAutoscalerVerticalAction {
	if template == nil || template.Annotations[v1alpha2.RecommendationIDAnnotation] != version {
		return last
	}
	at, err := time.Parse(time.RFC3339, template.Annotations[v1alpha2.RolloutAtAnnotation])
	if err != nil || (last != nil && !last.Time.Time.Before(at)) {
		return last
	}
	return &v1alpha2.DatadogPodAutoscalerVerticalAction{Time: metav1.NewTime(at), Version: version, Type: reasonRolloutTriggered}
}

func stableRolloutMessage(d rolloutDecision, interval time.Duration) string {
	if d.Retry > 0 {
		return fmt.Sprintf("pods lag the recommendation; rollouts are at least %s apart (autoscaling.workload.rollout_interval)", interval)
	}
	return d.Reason
}

// triggerRollout sets the pod-template annotations that make the workload controller roll
// out new pods, which the webhook then patches.
func (c *Controller) triggerRollout(ctx context.Context, t def.Target, version string, now time.Time) error {
	patch := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{%q:%q,%q:%q}}}}}`,
		v1alpha2.RolloutAtAnnotation, now.UTC().Format(time.RFC3339), v1alpha2.RecommendationIDAnnotation, version)
	opts := metav1.PatchOptions{FieldManager: apiobject.FieldManager}
	var err error
	switch t.Kind {
	case "Deployment":
		_, err = c.kube.AppsV1().Deployments(t.Namespace).Patch(ctx, t.Name, types.StrategicMergePatchType, patch, opts)
	case "StatefulSet":
		_, err = c.kube.AppsV1().StatefulSets(t.Namespace).Patch(ctx, t.Name, types.StrategicMergePatchType, patch, opts)
	default:
		err = fmt.Errorf("kind %s cannot be rolled out", t.Kind)
	}
	return err
}

// constrain turns a recommendation into the desired resources the DPA allows: containers
// that exist in the workload and are enabled, controlled resources only, requests only when
// so configured, each value within [minAllowed, maxAllowed], no limit below its request. It
// returns the desired resources sorted by container name and what was clamped or dropped.
func constrain(dpa *v1alpha2.DatadogPodAutoscaler, rec []def.ContainerResources, template []corev1.Container) ([]v1alpha2.DatadogPodAutoscalerContainerResources, []string) {
	var out []v1alpha2.DatadogPodAutoscalerContainerResources
	var limited []string
	for _, r := range rec {
		if !slices.ContainsFunc(template, func(c corev1.Container) bool { return c.Name == r.Name }) {
			limited = append(limited, fmt.Sprintf("container %s is not in the workload", r.Name))
			continue
		}
		cons := dpaview.ContainerConstraint(dpa, r.Name)
		if cons != nil && cons.Enabled != nil && !*cons.Enabled {
			continue
		}
		controlled := dpaview.DefaultControlledResources
		if cons != nil && len(cons.ControlledResources) > 0 {
			controlled = cons.ControlledResources
		}
		d := v1alpha2.DatadogPodAutoscalerContainerResources{Name: r.Name}
		d.Requests = clampList(r.Requests, controlled, cons, "request of "+r.Name, &limited)
		if !dpaview.RequestsOnly(cons) {
			d.Limits = clampList(r.Limits, controlled, cons, "limit of "+r.Name, &limited)
			for name, l := range d.Limits {
				if req, ok := d.Requests[name]; ok && l.Cmp(req) < 0 {
					d.Limits[name] = req.DeepCopy()
					limited = append(limited, fmt.Sprintf("%s limit of %s raised to its request %s", name, r.Name, req.String()))
				}
			}
		}
		if len(d.Requests) == 0 && len(d.Limits) == 0 {
			continue
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b v1alpha2.DatadogPodAutoscalerContainerResources) int { return strings.Compare(a.Name, b.Name) })
	return out, limited
}

// clampList keeps the controlled resources of in, each within the constraint's bounds.
func clampList(in corev1.ResourceList, controlled []corev1.ResourceName, cons *v1alpha2.DatadogPodAutoscalerContainerConstraints, what string, limited *[]string) corev1.ResourceList {
	if len(in) == 0 {
		return nil
	}
	out := corev1.ResourceList{}
	for name, q := range in {
		if !slices.Contains(controlled, name) {
			continue
		}
		q = q.DeepCopy()
		if cons != nil {
			lower, upper := cons.RequestBounds()
			if lo, ok := lower[name]; ok && q.Cmp(lo) < 0 {
				*limited = append(*limited, fmt.Sprintf("%s %s raised from %s to minAllowed %s", name, what, q.String(), lo.String()))
				q = lo.DeepCopy()
			}
			if hi, ok := upper[name]; ok && q.Cmp(hi) > 0 {
				*limited = append(*limited, fmt.Sprintf("%s %s lowered from %s to maxAllowed %s", name, what, q.String(), hi.String()))
				q = hi.DeepCopy()
			}
		}
		out[name] = q
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// recommendationVersion is the rec-id of desired resources: a stable hash of their canonical
// JSON (containers sorted by name; encoding/json sorts map keys; quantities in canonical
// form), 16 hex digits.
//
// burstable is part of it: pods with and without CPU limits carry different rec-ids, so that
// turning it on or off rolls the pods (or resizes them).
func recommendationVersion(desired []v1alpha2.DatadogPodAutoscalerContainerResources, burstable bool) string {
	canon := make([]v1alpha2.DatadogPodAutoscalerContainerResources, len(desired))
	for i, d := range desired {
		canon[i] = v1alpha2.DatadogPodAutoscalerContainerResources{Name: d.Name, Requests: canonical(d.Requests), Limits: canonical(d.Limits)}
	}
	slices.SortFunc(canon, func(a, b v1alpha2.DatadogPodAutoscalerContainerResources) int { return strings.Compare(a.Name, b.Name) })
	b, _ := json.Marshal(canon)
	if burstable {
		b = append(b, []byte(" burstable")...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func canonical(l corev1.ResourceList) corev1.ResourceList {
	if len(l) == 0 {
		return nil
	}
	out := corev1.ResourceList{}
	for k, v := range l {
		out[k] = resource.MustParse(v.String()) // one spelling per amount: "1000m" and "1" hash alike
	}
	return out
}

// rolloutDecision says whether to trigger a rollout of the target now, and if not, when to
// look again (zero: only on the next change).
type rolloutDecision struct {
	Trigger bool
	Reason  string
	Retry   time.Duration
}

// decideRollout: pods that do not all carry version need a rollout. A new version is rolled
// out at once unless a rollout happened less than interval ago; the version already in the
// pod template (a rollout in progress) is rolled out again only when it stalled, that is
// when pods still lag interval after the last rollout.
func decideRollout(version, templateRecID string, pods podwatcher.Counts, last *v1alpha2.DatadogPodAutoscalerVerticalAction, interval time.Duration, now time.Time) rolloutDecision {
	if pods.Current == 0 {
		return rolloutDecision{Reason: "no pods: new pods get the recommendation when created"}
	}
	if pods.ByRecID[version] == pods.Current {
		return rolloutDecision{Reason: "all pods carry the recommendation"}
	}
	var since time.Duration
	if last != nil {
		since = now.Sub(last.Time.Time)
	}
	if last == nil || since >= interval {
		if templateRecID == version {
			return rolloutDecision{Trigger: true, Reason: fmt.Sprintf("rollout of %s stalled: %d of %d pods updated after %s", version, pods.ByRecID[version], pods.Current, since.Round(time.Second))}
		}
		return rolloutDecision{Trigger: true, Reason: fmt.Sprintf("%d of %d pods lack recommendation %s", pods.Current-pods.ByRecID[version], pods.Current, version)}
	}
	if templateRecID == version {
		return rolloutDecision{Reason: "rollout in progress", Retry: interval - since}
	}
	return rolloutDecision{Reason: fmt.Sprintf("last rollout %s ago; next allowed in %s", since.Round(time.Second), (interval - since).Round(time.Second)), Retry: interval - since}
}

// burstable is the burstable option in effect: the spec's, else the preview annotation's
// (forwarded from a cluster profile; {"burstable": true}), else the agent's default
// (autoscaling.workload.options.burstable).
func (c *Controller) burstable(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	if o := dpa.Spec.Options; o != nil && o.Burstable != nil {
		return *o.Burstable
	}
	if v, ok := dpa.Annotations[v1alpha2.PreviewAnnotation]; ok {
		var preview struct {
			Burstable *bool `json:"burstable"`
		}
		if json.Unmarshal([]byte(v), &preview) == nil && preview.Burstable != nil {
			return *preview.Burstable
		}
	}
	return c.cfg.Options.Burstable
}
