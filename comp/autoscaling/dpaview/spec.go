package dpaview

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

// TargetOf is the workload a DPA autoscales.
func TargetOf(dpa *v1alpha2.DatadogPodAutoscaler) def.Target {
	return def.Target{Namespace: dpa.Namespace, Kind: dpa.Spec.TargetRef.Kind, Name: dpa.Spec.TargetRef.Name}
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

// IsPreview: applyPolicy.mode is Preview (recommendations recorded, nothing applied).
func IsPreview(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	return dpa.Spec.ApplyPolicy != nil && dpa.Spec.ApplyPolicy.Mode == v1alpha2.DatadogPodAutoscalerApplyModePreview
}

// IsPaused: the pause annotation is "true" (no action at all).
func IsPaused(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	return dpa.Annotations[v1alpha2.PauseAnnotation] == "true"
}

// RolloutsDisabled: applyPolicy.update.strategy is Disabled: no rollout, and new pods are not
// patched.
func RolloutsDisabled(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	return dpa.Spec.ApplyPolicy != nil && dpa.Spec.ApplyPolicy.Update != nil &&
		dpa.Spec.ApplyPolicy.Update.Strategy == v1alpha2.DatadogPodAutoscalerDisabledUpdateStrategy
}

// DefaultControlledResources are the resources a vertical recommendation may change when a
// constraint does not list them.
var DefaultControlledResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

// ContainerConstraint returns the constraint for a container: its own entry, else "*".
func ContainerConstraint(dpa *v1alpha2.DatadogPodAutoscaler, name string) *v1alpha2.DatadogPodAutoscalerContainerConstraints {
	if dpa.Spec.Constraints == nil {
		return nil
	}
	var wildcard *v1alpha2.DatadogPodAutoscalerContainerConstraints
	for i := range dpa.Spec.Constraints.Containers {
		c := &dpa.Spec.Constraints.Containers[i]
		if c.Name == name {
			return c
		}
		if c.Name == "*" {
			wildcard = c
		}
	}
	return wildcard
}

// RequestsOnly: the constraint controls requests only.
func RequestsOnly(c *v1alpha2.DatadogPodAutoscalerContainerConstraints) bool {
	return c != nil && c.ControlledValues != nil && *c.ControlledValues == v1alpha2.DatadogPodAutoscalerContainerControlledValuesRequestsOnly
}

// ApplyWithConstraint applies the desired resources as the constraint's controlledValues say:
// RequestsAndLimits (the default), RequestsOnly, or
// CPURequestsRemoveLimitsMemoryRequestsAndLimits (memory as RequestsAndLimits; CPU requests,
// and the CPU limit removed). It reports whether anything changed.
func ApplyWithConstraint(c *corev1.Container, d v1alpha2.DatadogPodAutoscalerContainerResources, cc *v1alpha2.DatadogPodAutoscalerContainerConstraints, burstable bool) bool {
	if RequestsOnly(cc) {
		return ApplyToContainer(c, d, true)
	}
	changed := ApplyToContainer(c, d, false)
	removeCPULimit := burstable || (cc != nil && cc.ControlledValues != nil && *cc.ControlledValues == v1alpha2.DatadogPodAutoscalerContainerControlledValuesCPURequestsRemoveLimitsMemoryRequestsAndLimits)
	if removeCPULimit {
		if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
			delete(c.Resources.Limits, corev1.ResourceCPU)
			changed = true
		}
	}
	return changed
}

// setResource sets name to q in *rl (created when nil) and reports whether it changed.
func setResource(rl *corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) bool {
	if cur, ok := (*rl)[name]; ok && cur.Cmp(q) == 0 {
		return false
	}
	if *rl == nil {
		*rl = corev1.ResourceList{}
	}
	(*rl)[name] = q.DeepCopy()
	return true
}

// ApplyToContainer sets a container's resources from its desired resources. Requests are set
// as recommended. Limits: a recommended limit is used as is; otherwise, when limits are
// controlled and the container has a limit for a resource whose request changes, the limit
// keeps its ratio to the request (limit × new request / old request). With RequestsOnly,
// limits never change and a request above its limit is capped at the limit (the API rejects
// a request above its limit). It reports whether anything changed.
func ApplyToContainer(c *corev1.Container, d v1alpha2.DatadogPodAutoscalerContainerResources, onlyRequests bool) bool {
	changed := false
	oldRequests := c.Resources.Requests.DeepCopy()
	for name, q := range d.Requests {
		if onlyRequests {
			if l, ok := c.Resources.Limits[name]; ok && q.Cmp(l) > 0 {
				q = l.DeepCopy()
			}
		}
		changed = setResource(&c.Resources.Requests, name, q) || changed
	}
	if onlyRequests {
		return changed
	}
	for name, q := range d.Limits {
		changed = setResource(&c.Resources.Limits, name, q) || changed
	}
	for name, newReq := range d.Requests {
		if _, given := d.Limits[name]; given {
			continue
		}
		oldLimit, hasLimit := c.Resources.Limits[name]
		oldReq, hadReq := oldRequests[name]
		if !hasLimit || !hadReq || oldReq.IsZero() || oldReq.Cmp(newReq) == 0 {
			continue
		}
		scaled := resource.NewMilliQuantity(ratioMilli(oldLimit.MilliValue(), newReq.MilliValue(), oldReq.MilliValue()), oldLimit.Format)
		if scaled.Cmp(newReq) < 0 {
			nr := newReq.DeepCopy()
			scaled = &nr
		}
		c.Resources.Limits[name] = *scaled
		changed = true
	}
	return changed
}

// ratioMilli is limit × newReq / oldReq in milli-units, rounded up, without overflowing for
// amounts up to petabytes.
func ratioMilli(limit, newReq, oldReq int64) int64 {
	f := float64(limit) * (float64(newReq) / float64(oldReq))
	v := int64(f)
	if float64(v) < f {
		v++
	}
	return v
}

// Burstable is the burstable option in effect for the DPA, as its leader wrote it in
// status.options (the spec's, else the profile's preview, else the agent's default).
func Burstable(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	o := dpa.Status.Options
	return o != nil && o.Burstable != nil && *o.Burstable
}
