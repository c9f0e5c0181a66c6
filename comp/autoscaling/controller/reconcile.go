package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/apiobject"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/dpaview"
	"github.com/lazyscale/lazyscale/comp/autoscaling/podwatcher"
	"github.com/lazyscale/lazyscale/comp/autoscaling/timeline"
	"github.com/lazyscale/lazyscale/comp/autoscaling/validation"
)

// podsSyncingDelay is how soon a DPA is looked at again while its namespace's pods are being
// listed (a namespace's list takes milliseconds to a few seconds).
const podsSyncingDelay = 250 * time.Millisecond

// conflictDelay is how soon a DPA whose status write met a newer version is looked at again.
const conflictDelay = time.Second

// reconcile evaluates one DPA, acts on it, and writes its status when it changed. It returns
// when to look again.
func (c *Controller) reconcile(ctx context.Context, key string) (time.Duration, error) {
	cached := c.view.Get(key)
	if cached == nil {
		c.forget(key)
		return 0, nil
	}
	if c.podsSynced != nil && !c.podsSynced(cached.Namespace) {
		// The pod collection has just added this namespace: its pods are being listed.
		return podsSyncingDelay, nil
	}
	dpa := cached.DeepCopy()
	after, evalErr := c.evaluate(ctx, key, dpa)
	c.timeline.Record(key, pointOf(c.now(), &dpa.Status))
	if !equality.Semantic.DeepEqual(cached.Status, dpa.Status) {
		err := c.writeStatus(ctx, dpa)
		switch {
		case apierrors.IsNotFound(err):
			// Deleted while it was evaluated: its deletion is on its way through the informer
			// and will forget it. Nothing to retry, nothing to warn about.
			c.log.Debug("DPA deleted before its status was written", zap.String("dpa", key))
			return 0, nil
		case apierrors.IsConflict(err):
			// A newer DPA is on its way through the informer. A change of its spec or
			// annotations queues it again; a status written by someone else does not (status
			// updates are ignored), so look again shortly.
			c.log.Debug("DPA changed before its status was written; looking again", zap.String("dpa", key))
			return conflictDelay, nil
		case err != nil:
			return 0, errors.Join(evalErr, err)
		}
	}
	return after, evalErr
}

// forget drops what the controller and the sources keep for a deleted DPA: its recommendation
// history, cached answers and failures, and the sources' state. Its target's pods are dropped
// when the view reports the target orphaned.
func (c *Controller) forget(key string) {
	c.historyMu.Lock()
	delete(c.history, key)
	c.historyMu.Unlock()
	c.answersMu.Lock()
	delete(c.answers, key)
	c.answersMu.Unlock()
	c.failingMu.Lock()
	delete(c.failing, key)
	c.failingMu.Unlock()
	c.appliedMu.Lock()
	delete(c.applied, key)
	c.appliedMu.Unlock()
	c.timeline.Forget(key)
	ns, name, _ := strings.Cut(key, "/")
	for _, src := range c.sources {
		if f, ok := src.(def.Forgetter); ok {
			f.Forget(ns, name)
		}
	}
}

// evaluate fills dpa.Status and performs the actions the DPA calls for.
func (c *Controller) evaluate(ctx context.Context, key string, dpa *v1alpha2.DatadogPodAutoscaler) (time.Duration, error) {
	resync := c.cfg.ResyncPeriod
	if dpaview.IsPaused(dpa) {
		c.setCondition(dpa, v1alpha2.ConditionActive, false, reasonPaused, "Autoscaling locally paused by the "+v1alpha2.PauseAnnotation+" annotation")
		c.setCondition(dpa, v1alpha2.ConditionError, false, reasonNoError, "")
		return 0, nil
	}
	fail := func(reason, msg string) (time.Duration, error) {
		c.setCondition(dpa, v1alpha2.ConditionActive, false, reason, msg)
		c.setCondition(dpa, v1alpha2.ConditionError, true, reason, msg)
		return 0, nil
	}
	if err := validation.Spec(dpa, c.ownNamespace); err != nil {
		return fail(err.Reason, err.Message)
	}
	if ignored := validation.NotActedOn(dpa); len(ignored) > 0 {
		c.setCondition(dpa, v1alpha2.ConditionNotActedOn, true, reasonNotActedOn, strings.Join(ignored, "; "))
	} else {
		v1alpha2.RemoveCondition(&dpa.Status.Conditions, v1alpha2.ConditionNotActedOn)
	}
	target := dpaview.TargetOf(dpa)
	if owner := c.view.Owner(target); owner != nil && owner.Namespace+"/"+owner.Name != key {
		return fail(reasonConflict, fmt.Sprintf("%s %s is already autoscaled by the older DPA %s; only one DPA may target a workload", target.Kind, target.Name, owner.Name))
	}
	if rank := c.view.Rank(key); rank >= c.cfg.Limit {
		return fail(reasonLimit, fmt.Sprintf("%d older DPAs exist and autoscaling.workload.limit is %d: this one is not active", rank, c.cfg.Limit))
	}
	if !validation.HasPodTemplate(dpa) {
		return c.evaluateScalable(ctx, key, dpa, target, fail)
	}
	w, err := c.workload(ctx, target)
	if apierrors.IsNotFound(err) {
		c.pods.Forget(target)
		_, ferr := fail(reasonTargetNotFound, fmt.Sprintf("%s %s not found in namespace %s", target.Kind, target.Name, target.Namespace))
		return resync, ferr // look again: the workload may be created later
	}
	if err != nil {
		return 0, fmt.Errorf("read target %s: %w", target, err)
	}
	if err := validation.AgainstTemplate(dpa, w.template); err != nil {
		_, ferr := fail(validation.ReasonInvalidSpec, err.Error())
		return resync, ferr // the workload may change: look again (its changes are not watched)
	}
	counts, g := c.activate(ctx, dpa, target, w)
	after := resync
	var errs []error
	if version := c.recommendVertical(dpa, g, def.ScaledContainerValues(&w.template.Spec)); version != "" {
		a, err := c.applyVertical(ctx, dpa, target, w, version, counts)
		if a > 0 && a < after {
			after = a
		}
		errs = append(errs, err)
	}
	errs = append(errs, c.horizontal(ctx, key, dpa, g, nil))
	return after, errors.Join(errs...)
}

// evaluateScalable handles a target whose pod template lazyscale does not read: any kind with
// a /scale subresource (a ReplicaSet, a custom resource). It is scaled horizontally only; the
// local recommender finds its pods with the selector /scale reports.
func (c *Controller) evaluateScalable(ctx context.Context, key string, dpa *v1alpha2.DatadogPodAutoscaler, target def.Target,
	fail func(reason, msg string) (time.Duration, error)) (time.Duration, error) {
	resync := c.cfg.ResyncPeriod
	scale, err := c.getScale(ctx, dpa)
	if err != nil {
		reason, msg := c.explainScaleError(ctx, dpa, err)
		if reason == "" {
			return 0, err // transient: retried with backoff
		}
		_, ferr := fail(reason, msg)
		return resync, ferr // the target (or its CRD) may appear later
	}
	_, g := c.activate(ctx, dpa, target, &workload{selector: scale.sc.Status.Selector, replicas: scale.sc.Spec.Replicas})
	c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToRecommend, false, reasonUnsupportedTarget,
		fmt.Sprintf("vertical scaling needs a pod template lazyscale reads (apps/v1 Deployment or StatefulSet): this %s is scaled horizontally only", target.Kind))
	if dpa.Status.Vertical != nil {
		dpa.Status.Vertical.Target = nil
	}
	return resync, c.horizontal(ctx, key, dpa, g, scale) // /scale already read: not again
}

// activate follows the target's pods, marks the DPA active and asks the recommendation
// sources about it.
func (c *Controller) activate(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, target def.Target, w *workload) (podwatcher.Counts, gathered) {
	c.pods.Follow(ctx, target)
	counts := c.pods.Counts(target)
	dpa.Status.CurrentReplicas = &counts.Current
	c.setCondition(dpa, v1alpha2.ConditionActive, true, reasonActive, "")
	g := c.gather(ctx, dpa, c.request(dpa, target, counts, w))
	if len(g.refused) > 0 {
		// The DPA asks for what the agent refuses (an endpoint it may not call): an error of
		// the DPA's, not a passing failure of its source.
		c.setCondition(dpa, v1alpha2.ConditionError, true, reasonFailed, strings.Join(g.refused, "; "))
	} else {
		c.setCondition(dpa, v1alpha2.ConditionError, false, reasonNoError, "")
	}
	return counts, g
}

// explainScaleError turns a failure to read a target's /scale into a condition: the kind is
// not served, the object is missing, or it has no /scale subresource. "" means transient.
func (c *Controller) explainScaleError(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, err error) (reason, msg string) {
	t := dpa.Spec.TargetRef
	switch {
	case meta.IsNoMatchError(err):
		return validation.ReasonInvalidSpec, fmt.Sprintf("kind %s of apiVersion %q is not served by the apiserver (CRD not installed, or a typo?)", t.Kind, t.APIVersion)
	case apierrors.IsNotFound(err):
		gvr, merr := c.targetResource(dpa)
		if merr == nil {
			if _, gerr := c.dyn.Resource(gvr).Namespace(dpa.Namespace).Get(ctx, t.Name, metav1.GetOptions{}); gerr == nil {
				return validation.ReasonInvalidSpec, fmt.Sprintf("%s %s has no /scale subresource: it cannot be autoscaled", t.Kind, t.Name)
			}
		}
		return reasonTargetNotFound, fmt.Sprintf("%s %s not found in namespace %s", t.Kind, t.Name, dpa.Namespace)
	}
	return "", ""
}

// workload is what the controller reads of the target.
type workload struct {
	template *corev1.PodTemplateSpec // nil for a kind read through /scale only
	selector string                  // spec.selector, as a label selector string
	replicas int32                   // spec.replicas (1 when unset, as the API defaults it)
}

// workload reads the target's pod template and selector.
func (c *Controller) workload(ctx context.Context, t def.Target) (*workload, error) {
	var (
		template corev1.PodTemplateSpec
		sel      *metav1.LabelSelector
		replicas *int32
	)
	switch t.Kind {
	case "Deployment":
		d, err := c.kube.AppsV1().Deployments(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		template, sel, replicas = d.Spec.Template, d.Spec.Selector, d.Spec.Replicas
	case "StatefulSet":
		s, err := c.kube.AppsV1().StatefulSets(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		template, sel, replicas = s.Spec.Template, s.Spec.Selector, s.Spec.Replicas
	default:
		return nil, fmt.Errorf("kind %s has no pod template", t.Kind)
	}
	w := &workload{template: &template, replicas: 1}
	if replicas != nil {
		w.replicas = *replicas
	}
	if sel != nil {
		if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
			w.selector = s.String()
		}
	}
	return w, nil
}

func (c *Controller) setCondition(dpa *v1alpha2.DatadogPodAutoscaler, typ string, status bool, reason, msg string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	v1alpha2.SetCondition(&dpa.Status.Conditions, v1alpha2.DatadogPodAutoscalerCondition{
		Type: typ, Status: s, Reason: reason, Message: msg,
		LastTransitionTime: metav1.NewTime(c.now().Truncate(time.Second)),
	})
	slices.SortFunc(dpa.Status.Conditions, func(a, b v1alpha2.DatadogPodAutoscalerCondition) int { return strings.Compare(a.Type, b.Type) })
}

// writeStatus writes the status subresource, guarded by the cached resourceVersion: a
// conflict means a newer DPA is on its way through the informer.
func (c *Controller) writeStatus(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler) error {
	res := c.dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(dpa.Namespace)
	if err := apiobject.UpdateStatus(ctx, res, dpa, "DatadogPodAutoscaler"); err != nil {
		return fmt.Errorf("write status of %s/%s: %w", dpa.Namespace, dpa.Name, err)
	}
	return nil
}

// pointOf is what the timeline keeps of a DPA's status: -1 for what it does not know.
func pointOf(now time.Time, st *v1alpha2.DatadogPodAutoscalerStatus) timeline.Point {
	p := timeline.Point{At: now, CurrentReplicas: -1, DesiredReplicas: -1, CPUMilli: -1, MemoryBytes: -1}
	if st.CurrentReplicas != nil {
		p.CurrentReplicas = *st.CurrentReplicas
	}
	if h := st.Horizontal; h != nil && h.Target != nil {
		p.DesiredReplicas = h.Target.DesiredReplicas
	}
	if v := st.Vertical; v != nil && v.Target != nil {
		p.CPUMilli = v.Target.PodCPURequest.MilliValue()
		p.MemoryBytes = v.Target.PodMemoryRequest.Value()
	}
	return p
}
