package dpaview

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	webhookdef "github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// Patcher gives a new pod what its DPA's status says: the DPA that owns the pod's workload
// (ReplicaSet → Deployment by name, StatefulSet directly, no ReplicaSet cache), its
// autoscaler-id, and the vertical recommendation with its rec-id. It reads only the DPA view
// every replica keeps from the shared informer, so followers patch exactly as the leader.
// It acts only on DPAs the leader marked Active, in Apply mode, not paused, whose
// update.strategy is not Disabled (as the Cluster Agent: Disabled stops vertical changes to
// new pods too).
type Patcher struct {
	view *View
}

// NewPatcher builds the patcher over a synced view.
func NewPatcher(view *View) *Patcher { return &Patcher{view: view} }

var _ webhookdef.PodPatcher = (*Patcher)(nil)

// PatchPod implements webhookdef.PodPatcher: it never blocks and reads only the view.
func (p *Patcher) PatchPod(pod *corev1.Pod) (bool, error) {
	owner := wmdef.ResolveOwner(pod)
	if owner.Kind != "Deployment" && owner.Kind != "StatefulSet" {
		return false, nil
	}
	dpa := p.view.Owner(def.Target{Namespace: pod.Namespace, Kind: owner.Kind, Name: owner.Name})
	if dpa == nil || !Patches(dpa) {
		return false, nil
	}
	changed := setAnnotation(&pod.ObjectMeta, v1alpha2.AutoscalerIDAnnotation, dpa.Namespace+"/"+dpa.Name)
	if v := dpa.Status.Vertical; v != nil && v.Target != nil {
		if ApplyRecommendation(dpa, pod) {
			changed = true
		}
		if setAnnotation(&pod.ObjectMeta, v1alpha2.RecommendationIDAnnotation, v.Target.Version) {
			changed = true
		}
	} else if _, ok := pod.Annotations[v1alpha2.RecommendationIDAnnotation]; ok {
		// The template's rec-id names a recommendation this view does not hold: the pod does
		// not get it, so it must not claim it (the controller counts pods by rec-id).
		delete(pod.Annotations, v1alpha2.RecommendationIDAnnotation)
		changed = true
	}
	return changed, nil
}

// ApplyRecommendation gives the pod's containers (native sidecars too) the DPA's vertical
// recommendation, within its constraints, and records in OriginalResourcesAnnotation what the
// changed containers had before the first change, as the Cluster Agent does. It reports a change.
func ApplyRecommendation(dpa *v1alpha2.DatadogPodAutoscaler, pod *corev1.Pod) bool {
	original := map[string]originalResources{}
	changed := false
	for _, d := range dpa.Status.Vertical.Target.DesiredResources {
		for _, c := range def.ScaledContainers(&pod.Spec) {
			if c.Name != d.Name {
				continue
			}
			before := originalOf(c)
			if ApplyWithConstraint(c, d, ContainerConstraint(dpa, d.Name), Burstable(dpa)) {
				original[c.Name] = before
				changed = true
			}
		}
	}
	if _, ok := pod.Annotations[v1alpha2.OriginalResourcesAnnotation]; changed && !ok {
		b, _ := json.Marshal(original)
		setAnnotation(&pod.ObjectMeta, v1alpha2.OriginalResourcesAnnotation, string(b))
	}
	return changed
}

// originalResources is one container's entry of OriginalResourcesAnnotation: each cpu and
// memory request and limit, null when absent.
type originalResources struct {
	Requests map[corev1.ResourceName]*string `json:"requests"`
	Limits   map[corev1.ResourceName]*string `json:"limits"`
}

func originalOf(c *corev1.Container) originalResources {
	pick := func(rl corev1.ResourceList) map[corev1.ResourceName]*string {
		out := map[corev1.ResourceName]*string{}
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := rl[name]; ok {
				s := q.String()
				out[name] = &s
			} else {
				out[name] = nil
			}
		}
		return out
	}
	return originalResources{Requests: pick(c.Resources.Requests), Limits: pick(c.Resources.Limits)}
}

// Patches reports whether the webhook patches new pods of the DPA's target: the leader marked
// it Active, and it is in Apply mode, not paused, with updates not Disabled.
func Patches(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	return v1alpha2.IsConditionTrue(dpa.Status.Conditions, v1alpha2.ConditionActive) &&
		!IsPreview(dpa) && !IsPaused(dpa) && !RolloutsDisabled(dpa)
}
