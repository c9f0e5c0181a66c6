// Package validation checks what the CRD's schema cannot about a DPA's spec and a cluster
// profile's template. The DPA controller and the cluster profile controller share it.
package validation

import (
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// ReasonInvalidSpec is the condition reason of a spec or template these checks refuse.
const ReasonInvalidSpec = "InvalidSpec"

// Spec checks what the CRD's schema cannot: the target's apiVersion, lazyscale
// itself, replica bounds, objectives that match their type, and per-container bounds. Any kind
// with a /scale subresource may be a target; whether it has one is known only from the
// apiserver (the DPA controller asks for its /scale).
func Spec(dpa *v1alpha2.DatadogPodAutoscaler, ownNamespace string) error {
	t := dpa.Spec.TargetRef
	if t.Kind == "" || t.Name == "" {
		return errors.New("targetRef: kind and name are required")
	}
	if (t.Kind == "Deployment" || t.Kind == "StatefulSet") && t.APIVersion != "" && t.APIVersion != "apps/v1" {
		return fmt.Errorf("target apiVersion %q is not supported for a %s: use apps/v1", t.APIVersion, t.Kind)
	}
	if _, err := schema.ParseGroupVersion(t.APIVersion); err != nil {
		return fmt.Errorf("target apiVersion %q: %w", t.APIVersion, err)
	}
	if dpa.Namespace == ownNamespace {
		return fmt.Errorf("the target is in lazyscale's own namespace %q: lazyscale does not autoscale itself (its webhook skips that namespace)", ownNamespace)
	}
	return Body(dpa.Spec.Constraints, dpa.Spec.Objectives)
}

// Body checks the part of a DPA spec a cluster profile's template also has.
func Body(constraints *v1alpha2.DatadogPodAutoscalerConstraints, objectives []v1alpha2.DatadogPodAutoscalerObjective) error {
	if c := constraints; c != nil {
		if c.MinReplicas != nil && c.MaxReplicas != nil && *c.MinReplicas > *c.MaxReplicas {
			return fmt.Errorf("constraints: minReplicas %d is above maxReplicas %d", *c.MinReplicas, *c.MaxReplicas)
		}
		for _, cc := range c.Containers {
			lower, upper := cc.RequestBounds()
			for name, lo := range lower {
				if hi, ok := upper[name]; ok && lo.Cmp(hi) > 0 {
					return fmt.Errorf("constraints: container %q: minAllowed %s %s is above maxAllowed %s", cc.Name, name, lo.String(), hi.String())
				}
			}
		}
	}
	// No objectives: v1alpha2.DefaultObjectives apply.
	for i, o := range objectives {
		if err := validateObjective(o); err != nil {
			return fmt.Errorf("objectives[%d]: %w", i, err)
		}
	}
	return nil
}

func validateObjective(o v1alpha2.DatadogPodAutoscalerObjective) error {
	var value v1alpha2.DatadogPodAutoscalerObjectiveValue
	switch o.Type {
	case v1alpha2.DatadogPodAutoscalerPodResourceObjectiveType:
		if o.PodResource == nil {
			return errors.New("type PodResource needs podResource")
		}
		if o.PodResource.Name != "cpu" && o.PodResource.Name != "memory" {
			return fmt.Errorf("podResource.name %q: want cpu or memory", o.PodResource.Name)
		}
		value = o.PodResource.Value
	case v1alpha2.DatadogPodAutoscalerContainerResourceObjectiveType:
		if o.ContainerResource == nil {
			return errors.New("type ContainerResource needs containerResource")
		}
		if o.ContainerResource.Container == "" {
			return errors.New("containerResource.container is empty")
		}
		if o.ContainerResource.Name != "cpu" && o.ContainerResource.Name != "memory" {
			return fmt.Errorf("containerResource.name %q: want cpu or memory", o.ContainerResource.Name)
		}
		value = o.ContainerResource.Value
	case v1alpha2.DatadogPodAutoscalerCustomQueryObjectiveType:
		if o.CustomQuery == nil {
			return errors.New("type CustomQuery needs customQuery")
		}
		value = o.CustomQuery.Value
	default:
		return fmt.Errorf("type %q: want PodResource, ContainerResource or CustomQuery", o.Type)
	}
	switch value.Type {
	case v1alpha2.DatadogPodAutoscalerUtilizationObjectiveValueType:
		if value.Utilization == nil || *value.Utilization < 1 {
			return errors.New("a Utilization value needs utilization of at least 1 (percent)")
		}
	case v1alpha2.DatadogPodAutoscalerAbsoluteValueObjectiveValueType:
		if value.AbsoluteValue == nil || value.AbsoluteValue.Sign() <= 0 {
			return errors.New("an AbsoluteValue value needs a positive absoluteValue")
		}
	default:
		return fmt.Errorf("value type %q: want Utilization or AbsoluteValue", value.Type)
	}
	return nil
}

// HasPodTemplate reports whether the target is a kind whose pod template lazyscale reads (and
// so can scale vertically): an apps/v1 Deployment or StatefulSet. Other kinds are scaled
// horizontally only, through /scale.
func HasPodTemplate(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	t := dpa.Spec.TargetRef
	return (t.Kind == "Deployment" || t.Kind == "StatefulSet") && (t.APIVersion == "" || t.APIVersion == "apps/v1")
}

// AgainstTemplate checks what needs the workload: containers the objectives and
// constraints name must exist in its pod template.
func AgainstTemplate(dpa *v1alpha2.DatadogPodAutoscaler, tmpl *corev1.PodTemplateSpec) error {
	has := func(name string) bool {
		return slices.ContainsFunc(tmpl.Spec.Containers, func(c corev1.Container) bool { return c.Name == name })
	}
	t := dpa.Spec.TargetRef
	for i, o := range dpa.Spec.Objectives {
		if o.ContainerResource != nil && !has(o.ContainerResource.Container) {
			return fmt.Errorf("objectives[%d]: container %q is not in %s %s", i, o.ContainerResource.Container, t.Kind, t.Name)
		}
	}
	if c := dpa.Spec.Constraints; c != nil {
		for _, cc := range c.Containers {
			if cc.Name != "*" && !has(cc.Name) {
				return fmt.Errorf("constraints: container %q is not in %s %s", cc.Name, t.Kind, t.Name)
			}
		}
	}
	return nil
}

// Profile checks a cluster profile's template as a DPA's spec would be checked.
func Profile(prof *v1alpha2.DatadogPodAutoscalerClusterProfile) error {
	t := prof.Spec.Template
	return Body(t.Constraints, t.Objectives)
}

// NotActedOn lists the fields of the spec that the Datadog API defines and lazyscale accepts
// and keeps but does not act on, each with what happens instead (empty: none).
func NotActedOn(dpa *v1alpha2.DatadogPodAutoscaler) []string {
	var out []string
	if dpa.Spec.Owner == v1alpha2.DatadogPodAutoscalerRemoteOwner {
		out = append(out, "owner Remote: there is no remote source, the DPA is reconciled as Local")
	}
	_, external := dpa.Annotations[v1alpha2.CustomRecommenderAnnotation]
	for i, o := range dpa.Spec.Objectives {
		if o.Type == v1alpha2.DatadogPodAutoscalerCustomQueryObjectiveType && !external {
			out = append(out, fmt.Sprintf("objectives[%d] (CustomQuery): only an external recommender (annotation %s) can serve it; the local recommender skips it", i, v1alpha2.CustomRecommenderAnnotation))
		}
	}
	if p := dpa.Spec.ApplyPolicy; p != nil && p.Update != nil && (p.Update.ResizePendingPeriod > 0 || p.Update.RolloutFallbackDelay > 0) {
		out = append(out, "applyPolicy.update.resizePendingPeriod/rolloutFallbackDelay: lazyscale rolls workloads out, it does not resize in place or evict")
	}
	if o := dpa.Spec.Options; o != nil && o.Burstable != nil {
		out = append(out, "options.burstable: CPU limits are kept as controlledValues says")
	}
	return out
}
