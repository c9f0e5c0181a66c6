package impl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// Condition reasons.
const (
	reasonActive           = "Active"
	reasonPaused           = "Paused"
	reasonInvalidSpec      = "InvalidSpec"
	reasonConflict         = "TargetAlreadyAutoscaled"
	reasonLimit            = "LimitReached"
	reasonTargetNotFound   = "TargetNotFound"
	reasonNoError          = "NoError"
	reasonReceived         = "RecommendationReceived"
	reasonFailed           = "RecommendationFailed"
	reasonNoSource         = "NoRecommendationSource"
	reasonNothingAllowed   = "NothingAllowed"
	reasonPreview          = "PreviewMode"
	reasonUpdatesDisabled  = "UpdateStrategyDisabled"
	reasonRolloutTriggered = "RolloutTriggered"
	reasonRolloutFailed    = "RolloutFailed"
	reasonUpToDate         = "UpToDate"
	reasonRolloutPending   = "RolloutPending"
	reasonLimited          = "Limited"
	reasonWithinBounds     = "WithinBounds"
	// reasonUnsupportedTarget: the target's kind allows horizontal scaling only.
	reasonUnsupportedTarget = "UnsupportedTarget"
)

// controller reconciles DPAs. It runs only on the leader: each leadership term gets a fresh
// rate-limited queue filled with every DPA, and its workers stop when the term ends.
type controller struct {
	log          *zap.Logger
	cfg          configdef.WorkloadAutoscalingConfig
	ownNamespace string
	kube         kubernetes.Interface
	dyn          dynamic.Interface
	autoscalers  *autoscalers
	pods         *podWatcher
	sources      []def.RecommendationSource // highest priority first
	recorder     record.EventRecorder
	now          func() time.Time
	// scales reads and writes /scale of any scalable kind, found through mapper.
	scales scale.ScalesGetter
	mapper meta.RESTMapper
	// history keeps each DPA's recent horizontal recommendations for the stabilization
	// windows. It lives on the leader only: a new leader starts with an empty history, and so
	// waits one window before scaling down (documented).
	historyMu sync.Mutex
	history   map[string][]timedRecommendation
	// answers caches the sources' answers per DPA (guarded by historyMu too).
	answers map[string]cachedAnswer
	// mapperResetAt is when the REST mapper last rediscovered.
	mapperMu      sync.Mutex
	mapperResetAt time.Time

	queue atomic.Pointer[workqueue.TypedRateLimitingInterface[string]]

	reconciles *prometheus.CounterVec
	rollouts   *prometheus.CounterVec
	scalings   *prometheus.CounterVec
}

// enqueue adds keys to the current term's queue; without a term (a follower) it does nothing.
func (c *controller) enqueue(keys ...string) {
	if q := c.queue.Load(); q != nil {
		for _, k := range keys {
			(*q).Add(k)
		}
	}
}

// podChangeDelay coalesces the reconciles pod changes cause: a rollout of 100 pods is a few
// reconciles and status writes, not hundreds.
const podChangeDelay = 2 * time.Second

// enqueueTarget re-reconciles, soon, the DPAs of a target whose pods changed.
func (c *controller) enqueueTarget(t targetKey) {
	q := c.queue.Load()
	if q == nil {
		return
	}
	for _, dpa := range c.autoscalers.forTarget(t) {
		(*q).AddAfter(dpa.Namespace+"/"+dpa.Name, podChangeDelay)
	}
}

// runTerm runs the workers until the leadership term (ctx) ends.
func (c *controller) runTerm(ctx context.Context) {
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "datadogpodautoscalers"})
	c.queue.Store(&q)
	for _, k := range c.autoscalers.keys() {
		q.Add(k)
	}
	c.log.Info("DPA controller started", zap.Int("workers", c.cfg.NumWorkers), zap.Int("autoscalers", q.Len()))
	var wg sync.WaitGroup
	for range c.cfg.NumWorkers {
		wg.Go(func() {
			for c.processNext(ctx, q) {
			}
		})
	}
	<-ctx.Done()
	c.queue.Store(nil)
	q.ShutDown()
	wg.Wait()
	c.log.Info("DPA controller stopped")
}

func (c *controller) processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	after, err := c.reconcile(ctx, key)
	if err != nil {
		c.reconciles.WithLabelValues("error").Inc()
		if ctx.Err() == nil {
			c.log.Warn("reconcile failed; retrying", zap.String("autoscaler", key), zap.Error(err))
			q.AddRateLimited(key)
		}
		return true
	}
	c.reconciles.WithLabelValues("ok").Inc()
	q.Forget(key)
	if after > 0 {
		q.AddAfter(key, after)
	}
	return true
}

// reconcile evaluates one DPA, acts on it, and writes its status when it changed. It returns
// when to look again.
func (c *controller) reconcile(ctx context.Context, key string) (time.Duration, error) {
	cached := c.autoscalers.get(key)
	if cached == nil {
		// Deleted: forget its recommendation history, cached answers and the sources' state.
		c.historyMu.Lock()
		delete(c.history, key)
		delete(c.answers, key)
		c.historyMu.Unlock()
		ns, name, _ := strings.Cut(key, "/")
		for _, src := range c.sources {
			if f, ok := src.(def.Forgetter); ok {
				f.Forget(ns, name)
			}
		}
		return 0, nil
	}
	dpa := cached.DeepCopy()
	after, evalErr := c.evaluate(ctx, key, dpa)
	if !equality.Semantic.DeepEqual(cached.Status, dpa.Status) {
		if err := c.writeStatus(ctx, dpa); err != nil {
			return 0, errors.Join(evalErr, err)
		}
	}
	return after, evalErr
}

// evaluate fills dpa.Status and performs the actions the DPA calls for.
func (c *controller) evaluate(ctx context.Context, key string, dpa *v1alpha2.DatadogPodAutoscaler) (time.Duration, error) {
	resync := c.cfg.ResyncPeriod
	if isPaused(dpa) {
		c.setCondition(dpa, v1alpha2.ConditionActive, false, reasonPaused, "annotation "+v1alpha2.PauseAnnotation+" is \"true\": no action is taken")
		c.setCondition(dpa, v1alpha2.ConditionError, false, reasonNoError, "")
		return 0, nil
	}
	fail := func(reason, msg string) (time.Duration, error) {
		c.setCondition(dpa, v1alpha2.ConditionActive, false, reason, msg)
		c.setCondition(dpa, v1alpha2.ConditionError, true, reason, msg)
		return 0, nil
	}
	if err := validateSpec(dpa, c.ownNamespace); err != nil {
		return fail(reasonInvalidSpec, err.Error())
	}
	target := targetOf(dpa)
	if owner := c.autoscalers.owner(target); owner != nil && owner.Namespace+"/"+owner.Name != key {
		return fail(reasonConflict, fmt.Sprintf("%s %s is already autoscaled by the older DPA %s; only one DPA may target a workload", target.Kind, target.Name, owner.Name))
	}
	if rank := c.autoscalers.rank(key); rank >= c.cfg.Limit {
		return fail(reasonLimit, fmt.Sprintf("%d older DPAs exist and autoscaling.workload.limit is %d: this one is not active", rank, c.cfg.Limit))
	}
	if !hasPodTemplate(dpa) {
		return c.evaluateScalable(ctx, key, dpa, target, fail)
	}
	w, err := c.workload(ctx, target)
	if apierrors.IsNotFound(err) {
		c.pods.forget(target)
		_, ferr := fail(reasonTargetNotFound, fmt.Sprintf("%s %s not found in namespace %s", target.Kind, target.Name, target.Namespace))
		return resync, ferr // look again: the workload may be created later
	}
	if err != nil {
		return 0, fmt.Errorf("read target %s: %w", target, err)
	}
	if err := validateAgainstTemplate(dpa, w.template); err != nil {
		_, ferr := fail(reasonInvalidSpec, err.Error())
		return resync, ferr // the workload may change: look again (its changes are not watched)
	}
	counts, g := c.activate(ctx, dpa, target, w)
	after := resync
	var errs []error
	if version := c.recommendVertical(dpa, g, w.template.Spec.Containers); version != "" {
		a, err := c.applyVertical(ctx, dpa, target, version, w.template.Annotations[v1alpha2.RecommendationIDAnnotation], counts)
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
func (c *controller) evaluateScalable(ctx context.Context, key string, dpa *v1alpha2.DatadogPodAutoscaler, target targetKey,
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
func (c *controller) activate(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, target targetKey, w *workload) (podCounts, gathered) {
	c.pods.follow(ctx, target)
	counts := c.pods.counts(target)
	dpa.Status.CurrentReplicas = &counts.Current
	c.setCondition(dpa, v1alpha2.ConditionActive, true, reasonActive, "")
	c.setCondition(dpa, v1alpha2.ConditionError, false, reasonNoError, "")
	return counts, c.gather(ctx, dpa, c.request(dpa, target, counts, w))
}

// explainScaleError turns a failure to read a target's /scale into a condition: the kind is
// not served, the object is missing, or it has no /scale subresource. "" means transient.
func (c *controller) explainScaleError(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, err error) (reason, msg string) {
	t := dpa.Spec.TargetRef
	switch {
	case meta.IsNoMatchError(err):
		return reasonInvalidSpec, fmt.Sprintf("kind %s of apiVersion %q is not served by the apiserver (CRD not installed, or a typo?)", t.Kind, t.APIVersion)
	case apierrors.IsNotFound(err):
		gvr, merr := c.targetResource(dpa)
		if merr == nil {
			if _, gerr := c.dyn.Resource(gvr).Namespace(dpa.Namespace).Get(ctx, t.Name, metav1.GetOptions{}); gerr == nil {
				return reasonInvalidSpec, fmt.Sprintf("%s %s has no /scale subresource: it cannot be autoscaled", t.Kind, t.Name)
			}
		}
		return reasonTargetNotFound, fmt.Sprintf("%s %s not found in namespace %s", t.Kind, t.Name, dpa.Namespace)
	}
	return "", ""
}

// gathered is what the recommendation sources said about one DPA.
type gathered struct {
	// vertical is the highest-priority source's container values.
	vertical *def.Recommendation
	// horizontal holds, per kind of source (Manual, Autoscaling, Local), the replica count of
	// the highest-priority source of that kind; selectHorizontal picks among them.
	horizontal map[v1alpha2.DatadogPodAutoscalerValueSource]*def.Recommendation
	applied    bool     // some source applies to the DPA
	errs       []string // "source: error"
}

// request is what the sources are told about a DPA and its target.
func (c *controller) request(dpa *v1alpha2.DatadogPodAutoscaler, t targetKey, counts podCounts, w *workload) def.Request {
	req := def.Request{Autoscaler: dpa.DeepCopy(), CurrentReplicas: counts.Current, ReadyReplicas: counts.Ready,
		TargetReplicas: w.replicas, Selector: w.selector, Pods: c.pods.podStates(t)}
	if w.template == nil {
		return req
	}
	for _, ctr := range w.template.Spec.Containers {
		req.Containers = append(req.Containers, def.ContainerResources{Name: ctr.Name, Requests: ctr.Resources.Requests.DeepCopy(), Limits: ctr.Resources.Limits.DeepCopy()})
	}
	return req
}

// gather returns what the sources say about the DPA (see ask). The answers are reused for
// half a resync period while what the sources are told has not changed (the DPA's generation
// and annotations, the pods' readiness and OOM kills, the workload's container resources): a
// status write echoing back through the informer, or a burst of pod events, does not call an
// external recommender again.
func (c *controller) gather(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, req def.Request) gathered {
	key, fp, now := dpa.Namespace+"/"+dpa.Name, fingerprint(dpa, req), c.now()
	c.historyMu.Lock()
	cached, ok := c.answers[key]
	c.historyMu.Unlock()
	if ok && cached.fingerprint == fp && now.Sub(cached.at) < c.cfg.ResyncPeriod/2 {
		return cached.g
	}
	g := c.ask(ctx, dpa, req)
	c.historyMu.Lock()
	c.answers[key] = cachedAnswer{fingerprint: fp, at: now, g: g}
	c.historyMu.Unlock()
	return g
}

// cachedAnswer is what the sources said about one DPA, and about which input.
type cachedAnswer struct {
	fingerprint string
	at          time.Time
	g           gathered
}

// fingerprint identifies what the sources are told about a DPA.
func fingerprint(dpa *v1alpha2.DatadogPodAutoscaler, req def.Request) string {
	type pod struct {
		Name  string
		Ready bool
		OOM   []def.OOMKill
	}
	pods := make([]pod, len(req.Pods))
	for i, p := range req.Pods {
		pods[i] = pod{p.Name, p.Ready, p.OOMKills}
	}
	b, _ := json.Marshal(struct {
		Generation  int64
		Annotations map[string]string
		Current     int32
		Ready       int32
		Containers  []def.ContainerResources
		Pods        []pod
		Target      int32
	}{dpa.Generation, dpa.Annotations, req.CurrentReplicas, req.ReadyReplicas, req.Containers, pods, req.TargetReplicas})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ask calls every applicable source once, highest priority first. Every source is asked, even
// once both parts have a value: which horizontal value is used depends on the external
// value's age and the DPA's fallback policy (selectHorizontal), and the local source learns
// from each call.
func (c *controller) ask(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, req def.Request) gathered {
	g := gathered{horizontal: map[v1alpha2.DatadogPodAutoscalerValueSource]*def.Recommendation{}}
	for _, src := range c.sources {
		if !src.Applies(dpa) {
			continue
		}
		g.applied = true
		r, err := src.Recommend(ctx, req)
		if err != nil {
			g.errs = append(g.errs, src.Name()+": "+err.Error())
			continue
		}
		if r == nil {
			continue
		}
		if g.vertical == nil && len(r.Containers) > 0 {
			g.vertical = r
		}
		if r.Replicas != nil && g.horizontal[r.Source] == nil {
			g.horizontal[r.Source] = r
		}
	}
	return g
}

// recommendVertical constrains the winning vertical values and records them in status. It
// returns the recommendation version to apply, "" if none.
func (c *controller) recommendVertical(dpa *v1alpha2.DatadogPodAutoscaler, g gathered, containers []corev1.Container) string {
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
		msg := strings.Join(errs, "; ")
		if msg == "" {
			msg = "the sources returned no vertical values"
		}
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToRecommend, false, reasonFailed, msg)
		// Keep the last recommendation: new pods keep getting it while the source is down.
		if st.Vertical != nil && st.Vertical.Target != nil {
			return st.Vertical.Target.Version
		}
		return ""
	}
	desired, limited := constrain(dpa, rec.Containers, containers)
	if len(limited) > 0 {
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
	version := recommendationVersion(desired)
	if st.Vertical == nil {
		st.Vertical = &v1alpha2.DatadogPodAutoscalerVerticalStatus{}
	}
	if st.Vertical.Target == nil || st.Vertical.Target.Version != version || st.Vertical.Target.Source != rec.Source {
		// Only a new recommendation moves generatedAt: an unchanged one writes nothing.
		st.Vertical.Target = &v1alpha2.DatadogPodAutoscalerVerticalTargetStatus{
			Source: rec.Source, GeneratedAt: metav1.NewTime(rec.Timestamp.Truncate(time.Second)),
			Version: version, DesiredResources: desired,
		}
	}
	return version
}

// applyVertical rolls the workload out when its pods lag the recommendation.
func (c *controller) applyVertical(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, target targetKey, version, templateRecID string, counts podCounts) (time.Duration, error) {
	switch {
	case isPreview(dpa):
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, false, reasonPreview, "applyPolicy.mode is Preview: the recommendation is only recorded")
		return 0, nil
	case rolloutsDisabled(dpa):
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, false, reasonUpdatesDisabled, "applyPolicy.update.strategy is Disabled: no rollout; new pods still get the recommendation")
		return 0, nil
	}
	st := dpa.Status.Vertical
	now := c.now()
	d := decideRollout(version, templateRecID, counts, st.LastAction, c.cfg.RolloutInterval, now)
	if !d.Trigger {
		reason := reasonUpToDate
		if d.Retry > 0 {
			reason = reasonRolloutPending
		}
		// A stable message: a countdown would rewrite the status on every pass.
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reason, stableRolloutMessage(d, c.cfg.RolloutInterval))
		return d.Retry, nil
	}
	if err := c.triggerRollout(ctx, target, version, now); err != nil {
		c.rollouts.WithLabelValues("failure").Inc()
		c.recorder.Eventf(dpa, corev1.EventTypeWarning, "FailedTriggerRollout", "rollout of %s %s for recommendation %s failed: %v", target.Kind, target.Name, version, err)
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, false, reasonRolloutFailed, err.Error())
		return 0, fmt.Errorf("rollout %s: %w", target, err)
	}
	c.rollouts.WithLabelValues("success").Inc()
	c.recorder.Eventf(dpa, corev1.EventTypeNormal, "SuccessfulTriggerRollout", "rolled out %s %s for recommendation %s: %s", target.Kind, target.Name, version, d.Reason)
	c.log.Info("vertical rollout triggered", zap.String("target", target.String()), zap.String("rec_id", version), zap.String("why", d.Reason))
	st.LastAction = &v1alpha2.DatadogPodAutoscalerVerticalAction{Time: metav1.NewTime(now.Truncate(time.Second)), Version: version, Type: reasonRolloutTriggered}
	c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reasonRolloutTriggered, "rollout triggered for recommendation "+version)
	return c.cfg.RolloutInterval, nil
}

func stableRolloutMessage(d rolloutDecision, interval time.Duration) string {
	if d.Retry > 0 {
		return fmt.Sprintf("pods lag the recommendation; rollouts are at least %s apart (autoscaling.workload.rollout_interval)", interval)
	}
	return d.Reason
}

// triggerRollout sets the pod-template annotations that make the workload controller roll
// out new pods, which the webhook then patches.
func (c *controller) triggerRollout(ctx context.Context, t targetKey, version string, now time.Time) error {
	patch := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{%q:%q,%q:%q}}}}}`,
		v1alpha2.RolloutAtAnnotation, now.UTC().Format(time.RFC3339), v1alpha2.RecommendationIDAnnotation, version)
	opts := metav1.PatchOptions{FieldManager: "lazyscale"}
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

// workload is what the controller reads of the target.
type workload struct {
	template *corev1.PodTemplateSpec // nil for a kind read through /scale only
	selector string                  // spec.selector, as a label selector string
	replicas int32                   // spec.replicas (1 when unset, as the API defaults it)
}

// workload reads the target's pod template and selector.
func (c *controller) workload(ctx context.Context, t targetKey) (*workload, error) {
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

func (c *controller) setCondition(dpa *v1alpha2.DatadogPodAutoscaler, typ string, status bool, reason, msg string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&dpa.Status.Conditions, metav1.Condition{
		Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: dpa.Generation,
		LastTransitionTime: metav1.NewTime(c.now().Truncate(time.Second)),
	})
	slices.SortFunc(dpa.Status.Conditions, func(a, b metav1.Condition) int { return strings.Compare(a.Type, b.Type) })
}

// writeStatus writes the status subresource, guarded by the cached resourceVersion: a
// conflict means a newer DPA is on its way through the informer.
func (c *controller) writeStatus(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler) error {
	res := c.dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(dpa.Namespace)
	if err := updateStatus(ctx, res, dpa, "DatadogPodAutoscaler"); err != nil {
		return fmt.Errorf("write status of %s/%s: %w", dpa.Namespace, dpa.Name, err)
	}
	return nil
}

// updateStatus writes obj (a typed datadoghq.com/v1alpha2 object of kind) through the status
// subresource of res, guarded by obj's resourceVersion.
func updateStatus(ctx context.Context, res dynamic.ResourceInterface, obj runtime.Object, kind string) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha2.SchemeGroupVersion.String())
	u.SetKind(kind)
	_, err = res.UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "lazyscale"})
	return err
}
