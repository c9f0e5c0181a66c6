package impl

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	webhookdef "github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// podPatcher gives a new pod what its DPA's status says: the DPA that owns the pod's workload
// (ReplicaSet → Deployment by name, StatefulSet directly, no ReplicaSet cache), its
// autoscaler-id, and the vertical recommendation with its rec-id. It reads only the DPA view
// every replica keeps from the shared informer, so followers patch exactly as the leader.
// It acts only on DPAs the leader marked Active, in Apply mode, not paused.
type podPatcher struct {
	autoscalers *autoscalers
}

var _ webhookdef.PodPatcher = (*podPatcher)(nil)

func (p *podPatcher) PatchPod(pod *corev1.Pod) (bool, error) {
	owner := wmdef.ResolveOwner(pod)
	if owner.Kind != "Deployment" && owner.Kind != "StatefulSet" {
		return false, nil
	}
	dpa := p.autoscalers.owner(targetKey{Namespace: pod.Namespace, Kind: owner.Kind, Name: owner.Name})
	if dpa == nil || !meta.IsStatusConditionTrue(dpa.Status.Conditions, v1alpha2.ConditionActive) ||
		isPreview(dpa) || isPaused(dpa) {
		return false, nil
	}
	changed := setAnnotation(&pod.ObjectMeta, v1alpha2.AutoscalerIDAnnotation, dpa.Namespace+"/"+dpa.Name)
	if v := dpa.Status.Vertical; v != nil && v.Target != nil {
		for _, d := range v.Target.DesiredResources {
			for i := range pod.Spec.Containers {
				c := &pod.Spec.Containers[i]
				if c.Name == d.Name && applyToContainer(c, d, requestsOnly(containerConstraint(dpa, d.Name))) {
					changed = true
				}
			}
		}
		if setAnnotation(&pod.ObjectMeta, v1alpha2.RecommendationIDAnnotation, v.Target.Version) {
			changed = true
		}
	}
	return changed, nil
}

func setAnnotation(m *metav1.ObjectMeta, key, value string) bool {
	if m.Annotations[key] == value {
		return false
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[key] = value
	return true
}

func isPreview(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	return dpa.Spec.ApplyPolicy != nil && dpa.Spec.ApplyPolicy.Mode == v1alpha2.DatadogPodAutoscalerApplyModePreview
}

func isPaused(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	return dpa.Annotations[v1alpha2.PauseAnnotation] == "true"
}

func rolloutsDisabled(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	return dpa.Spec.ApplyPolicy != nil && dpa.Spec.ApplyPolicy.Update != nil &&
		dpa.Spec.ApplyPolicy.Update.Strategy == v1alpha2.DatadogPodAutoscalerDisabledUpdateStrategy
}
