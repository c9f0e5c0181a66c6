package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/apiobject"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/dpaview"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// In-place resize (pods/resize, GA since Kubernetes 1.35): with update.strategy Auto, a new
// recommendation is applied to the running pods without replacing them. Each pod that lacks
// it gets its containers' resources through the resize subresource, then the rec-id and
// autoscaler-id annotations. The kubelet reports the outcome in the pod's status: its
// containers' status resources match the spec again (done), or a PodResizePending condition
// says Deferred (waited for up to resizePendingPeriod) or Infeasible. A resize that cannot be
// done in place, now or after the wait, falls back to a rollout of the workload.

// Vertical action types and condition reasons of the in-place path, as the Cluster Agent
// writes them.
const (
	actionResizeTriggered = "ResizeTriggered"
	actionResizeCompleted = "ResizeCompleted"
	reasonResizeTriggered = "ResizeTriggered"
	reasonResizeWaiting   = "ResizeInProgress"
	reasonResizeCompleted = "ResizeCompleted"
)

// defaultResizePendingPeriod is how long a Deferred resize is waited for when the DPA does not
// say (update.resizePendingPeriod), as in the Cluster Agent.
const defaultResizePendingPeriod = 600 * time.Second

// resizePoll is how soon a DPA with resizes under way is looked at again.
const resizePoll = 2 * time.Second

// Pod conditions the kubelet writes about a resize.
const (
	podResizePending    corev1.PodConditionType = "PodResizePending"
	podResizeInProgress corev1.PodConditionType = "PodResizeInProgress"
	resizeInfeasible                            = "Infeasible"
	resizeDeferred                              = "Deferred"
)

// inPlace says whether the DPA lets lazyscale resize pods in place: update.strategy Auto (the
// default). TriggerRollout always rolls out; Disabled changes nothing.
func inPlace(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	p := dpa.Spec.ApplyPolicy
	if p == nil || p.Update == nil {
		return true
	}
	return p.Update.Strategy == "" || p.Update.Strategy == v1alpha2.DatadogPodAutoscalerAutoUpdateStrategy
}

func resizePendingPeriod(dpa *v1alpha2.DatadogPodAutoscaler) time.Duration {
	if p := dpa.Spec.ApplyPolicy; p != nil && p.Update != nil && p.Update.ResizePendingPeriod > 0 {
		return time.Duration(p.Update.ResizePendingPeriod) * time.Second
	}
	return defaultResizePendingPeriod
}

// resizeOutcome is what one pass of in-place resizing found and did.
type resizeOutcome struct {
	resized  []string // pods resized in this pass
	waiting  int      // pods whose resize the kubelet has not finished
	done     int      // pods running with the recommendation
	fallback string   // why the recommendation must be rolled out instead ("" if not)
}

// resizeVertical resizes in place the target's running pods that lack the recommendation, and
// follows the resizes under way. It returns when to look again, and a reason to roll out
// instead when a resize cannot be done in place.
func (c *Controller) resizeVertical(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, target def.Target, w *workload, version string) (time.Duration, string, error) {
	st := dpa.Status.Vertical
	now := c.now()
	out, err := c.resizePods(ctx, dpa, target, w, version, now)
	if err != nil {
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, false, "ResizeFailed", err.Error())
		return 0, "", err
	}
	if out.fallback != "" {
		return 0, out.fallback, nil
	}
	key := dpa.Namespace + "/" + dpa.Name
	switch {
	case len(out.resized) > 0:
		c.recorder.Eventf(dpa, corev1.EventTypeNormal, "ResizeTriggered", "resized %d pods of %s %s in place for recommendation %s: %s",
			len(out.resized), target.Kind, target.Name, version, strings.Join(out.resized, ", "))
		c.log.Info("in-place resize triggered", zap.String("dpa", key), zap.String("rec_id", version), zap.Strings("pods", out.resized))
		st.LastAction = &v1alpha2.DatadogPodAutoscalerVerticalAction{Time: metav1.NewTime(now.Truncate(time.Second)), Version: version, Type: actionResizeTriggered}
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reasonResizeTriggered, "pods resized in place for recommendation "+version)
		return resizePoll, "", nil
	case out.waiting > 0:
		c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reasonResizeWaiting,
			fmt.Sprintf("in-place resize to recommendation %s under way; a resize the kubelet defers is waited for up to %s (update.resizePendingPeriod), then rolled out", version, resizePendingPeriod(dpa)))
		return resizePoll, "", nil
	}
	if st.LastAction != nil && st.LastAction.Version == version && st.LastAction.Type == actionResizeTriggered {
		c.recorder.Eventf(dpa, corev1.EventTypeNormal, "ResizeSuccessful", "every pod of %s %s runs recommendation %s, resized in place", target.Kind, target.Name, version)
		c.log.Info("in-place resize completed", zap.String("dpa", key), zap.String("rec_id", version), zap.Int("pods", out.done))
		st.LastAction = &v1alpha2.DatadogPodAutoscalerVerticalAction{Time: metav1.NewTime(now.Truncate(time.Second)), Version: version, Type: actionResizeCompleted}
	}
	reason := reasonUpToDate
	if st.LastAction != nil && st.LastAction.Version == version && st.LastAction.Type == actionResizeCompleted {
		reason = reasonResizeCompleted
	}
	c.setCondition(dpa, v1alpha2.ConditionVerticalAbleToApply, true, reason, "all running pods carry recommendation "+version)
	return c.cfg.ResyncPeriod, "", nil
}

// resizePods does one pass over the target's pods (read from the apiserver's watch cache: a
// resize is rare, and needs each pod's spec and status).
func (c *Controller) resizePods(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, target def.Target, w *workload, version string, now time.Time) (resizeOutcome, error) {
	var out resizeOutcome
	pods, err := c.kube.CoreV1().Pods(target.Namespace).List(ctx, metav1.ListOptions{LabelSelector: w.selector, ResourceVersion: "0"})
	if err != nil {
		return out, fmt.Errorf("list pods of %s: %w", target, err)
	}
	period := resizePendingPeriod(dpa)
	for i := range pods.Items {
		pod := &pods.Items[i]
		if owner := wmdef.ResolveOwner(pod); owner.Kind != target.Kind || owner.Name != target.Name || pod.DeletionTimestamp != nil {
			continue
		}
		if pod.Annotations[v1alpha2.RecommendationIDAnnotation] == version {
			switch why := resizeState(pod, now, period); why {
			case "":
				out.done++
			case "waiting":
				out.waiting++
			default:
				out.fallback = why
				return out, nil
			}
			continue
		}
		if pod.Status.Phase != corev1.PodRunning {
			out.waiting++ // resized once it runs (or created patched by the webhook)
			continue
		}
		patch, original, why := resizePatch(dpa, pod)
		if why != "" {
			out.fallback = fmt.Sprintf("pod %s cannot be resized in place: %s", pod.Name, why)
			return out, nil
		}
		if patch != nil {
			if _, err := c.kube.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch,
				metav1.PatchOptions{FieldManager: apiobject.FieldManager}, "resize"); err != nil {
				if isGone(err) {
					continue
				}
				out.fallback = fmt.Sprintf("the apiserver refused the in-place resize of pod %s: %v", pod.Name, err)
				return out, nil
			}
		}
		annotations := map[string]string{v1alpha2.RecommendationIDAnnotation: version, v1alpha2.AutoscalerIDAnnotation: dpa.Namespace + "/" + dpa.Name}
		if original != "" {
			annotations[v1alpha2.OriginalResourcesAnnotation] = original
		}
		ann, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
		if _, err := c.kube.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, ann,
			metav1.PatchOptions{FieldManager: apiobject.FieldManager}); err != nil && !isGone(err) {
			return out, fmt.Errorf("annotate resized pod %s: %w", pod.Name, err)
		}
		out.resized = append(out.resized, pod.Name)
	}
	return out, nil
}

// resizeState says where a resized pod stands: "" done, "waiting" under way, else why it must
// be rolled out instead (Infeasible, or Deferred longer than period).
func resizeState(pod *corev1.Pod, now time.Time, period time.Duration) string {
	for _, cond := range pod.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch {
		case cond.Type == podResizePending && cond.Reason == resizeInfeasible:
			return fmt.Sprintf("the kubelet reports the resize of pod %s Infeasible: %s", pod.Name, cond.Message)
		case cond.Type == podResizePending && cond.Reason == resizeDeferred && now.Sub(cond.LastTransitionTime.Time) >= period:
			return fmt.Sprintf("the resize of pod %s has been Deferred for %s (update.resizePendingPeriod %s): %s",
				pod.Name, now.Sub(cond.LastTransitionTime.Time).Round(time.Second), period, cond.Message)
		case cond.Type == podResizePending, cond.Type == podResizeInProgress:
			return "waiting"
		}
	}
	statuses := map[string]*corev1.ResourceRequirements{}
	for i := range pod.Status.ContainerStatuses {
		statuses[pod.Status.ContainerStatuses[i].Name] = pod.Status.ContainerStatuses[i].Resources
	}
	for i := range pod.Status.InitContainerStatuses {
		statuses[pod.Status.InitContainerStatuses[i].Name] = pod.Status.InitContainerStatuses[i].Resources
	}
	for _, ctr := range def.ScaledContainers(&pod.Spec) {
		got := statuses[ctr.Name]
		if got == nil || !equality.Semantic.DeepEqual(got.Requests, ctr.Resources.Requests) || !equality.Semantic.DeepEqual(got.Limits, ctr.Resources.Limits) {
			return "waiting"
		}
	}
	return ""
}

// resizePatch is the pods/resize patch that gives the pod the DPA's recommendation (nil when its
// resources already match) and the pod's original-resources annotation to write with it (""
// when it has one), or why it cannot be done in place: a resize can change requests and limits,
// not add or remove them, nor change the pod's QoS class.
func resizePatch(dpa *v1alpha2.DatadogPodAutoscaler, pod *corev1.Pod) (patch []byte, original, why string) {
	want := pod.DeepCopy()
	if !dpaview.ApplyRecommendation(dpa, want) {
		return nil, "", ""
	}
	type entry struct {
		Name      string                      `json:"name"`
		Resources corev1.ResourceRequirements `json:"resources"`
	}
	var containers, sidecars []entry
	olds := def.ScaledContainers(&pod.Spec)
	for i, ctr := range def.ScaledContainers(&want.Spec) {
		old := olds[i]
		if equality.Semantic.DeepEqual(old.Resources, ctr.Resources) {
			continue
		}
		if len(old.Resources.Limits) != len(ctr.Resources.Limits) || len(old.Resources.Requests) != len(ctr.Resources.Requests) {
			return nil, "", fmt.Sprintf("container %s would gain or lose a request or limit", ctr.Name)
		}
		e := entry{Name: ctr.Name, Resources: ctr.Resources}
		if def.IsNativeSidecar(ctr) {
			sidecars = append(sidecars, e)
		} else {
			containers = append(containers, e)
		}
	}
	if qosClass(pod) != qosClass(want) {
		return nil, "", fmt.Sprintf("its QoS class would change from %s to %s", qosClass(pod), qosClass(want))
	}
	spec := map[string]any{}
	if len(containers) > 0 {
		spec["containers"] = containers
	}
	if len(sidecars) > 0 {
		spec["initContainers"] = sidecars
	}
	if _, had := pod.Annotations[v1alpha2.OriginalResourcesAnnotation]; !had {
		original = want.Annotations[v1alpha2.OriginalResourcesAnnotation]
	}
	b, _ := json.Marshal(map[string]any{"spec": spec})
	return b, original, ""
}

// qosClass is the pod's QoS class as the kubelet derives it from its containers' cpu and memory
// requests and limits (Guaranteed: every container has limits equal to its requests for both;
// BestEffort: none has any; Burstable otherwise).
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	guaranteed, any := true, false
	for _, c := range append(append([]corev1.Container{}, pod.Spec.Containers...), pod.Spec.InitContainers...) {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[name]
			lim, hasLim := c.Resources.Limits[name]
			if hasReq || hasLim {
				any = true
			}
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// isGone: the pod went away meanwhile (deleted, or replaced under the same name).
func isGone(err error) bool { return apierrors.IsNotFound(err) || apierrors.IsConflict(err) }
