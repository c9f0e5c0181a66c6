// Package validation checks what the CRD's schema cannot about a DPA's spec and a cluster
// profile's template. The DPA controller and the cluster profile controller share it.
package validation

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	admission "github.com/lazyscale/lazyscale/comp/admission/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

// Condition reasons of the specs these checks refuse.
const (
	// ReasonInvalidSpec: a spec or template these checks refuse.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonSkippedNamespace: the DPA is in a namespace the webhook never intercepts.
	ReasonSkippedNamespace = "NamespaceSkipped"
	// ReasonSpecLostInConversion: the DPA was written as v1alpha1 with fields the apiserver did
	// not keep.
	ReasonSpecLostInConversion = "SpecLostInConversion"
)

// Bounds on what one DPA may ask, so that its cost (memory, time, the size of its status) is
// bounded whatever its author writes. The apiserver bounds an object's annotations to 256 KiB
// in all; these are tighter, per annotation lazyscale parses.
const (
	// MaxAnnotationBytes bounds each annotation lazyscale parses (force-resources,
	// custom-recommender with its settings, force-replicas, pause, preview).
	MaxAnnotationBytes = 16 << 10
	// MaxContainers bounds constraints.containers, the entries of force-resources and the
	// containers of the target's pod template.
	MaxContainers = 256
	// MaxObjectives bounds spec.objectives.
	MaxObjectives = 16
)

// boundedAnnotations are the annotations lazyscale parses.
var boundedAnnotations = []string{v1alpha2.ForceResourcesAnnotation, v1alpha2.CustomRecommenderAnnotation,
	v1alpha2.ForceReplicasAnnotation, v1alpha2.PauseAnnotation, v1alpha2.PreviewAnnotation}

// Error is a refused spec: its condition reason and what to say.
type Error struct {
	Reason, Message string
}

func (e *Error) Error() string { return e.Message }

func invalid(err error) *Error { return &Error{Reason: ReasonInvalidSpec, Message: err.Error()} }

// Spec checks what the CRD's schema cannot: a spec that reached the apiserver whole, the
// namespace, the target's apiVersion, replica bounds, objectives that match their type, and
// per-container bounds. Any kind with a /scale subresource may be a target; whether it has one
// is known only from the apiserver (the DPA controller asks for its /scale).
func Spec(dpa *v1alpha2.DatadogPodAutoscaler, ownNamespace string) *Error {
	if lost := LostInConversion(dpa); len(lost) > 0 {
		return &Error{Reason: ReasonSpecLostInConversion, Message: fmt.Sprintf(
			"written as datadoghq.com/v1alpha1 with %s, which the apiserver did not keep (the CRD stores v1alpha2 and, as the Datadog CRD, does not convert): lazyscale does not act on the rest. "+
				"Delete it and create it as datadoghq.com/v1alpha2: policy.applyMode All is applyPolicy.mode Apply, None and Manual are Preview; upscale/downscale are scaleUp/scaleDown; targets are objectives",
			strings.Join(lost, " and "))}
	}
	if slices.Contains(admission.SkippedNamespaces(ownNamespace), dpa.Namespace) {
		return &Error{Reason: ReasonSkippedNamespace, Message: fmt.Sprintf(
			"namespace %s is never sent to lazyscale's webhook (it keeps kube-system and its own namespace %s out, so that it cannot block them): its pods cannot be patched, and lazyscale does not autoscale there", dpa.Namespace, ownNamespace)}
	}
	for _, a := range boundedAnnotations {
		if n := len(dpa.Annotations[a]); n > MaxAnnotationBytes {
			return invalid(fmt.Errorf("annotation %s is %d bytes: at most %d", a, n, MaxAnnotationBytes))
		}
	}
	t := dpa.Spec.TargetRef
	if t.Kind == "" || t.Name == "" {
		return invalid(errors.New("targetRef: kind and name are required"))
	}
	if (t.Kind == "Deployment" || t.Kind == "StatefulSet") && t.APIVersion != "" && t.APIVersion != "apps/v1" {
		return invalid(fmt.Errorf("target apiVersion %q is not supported for a %s: use apps/v1", t.APIVersion, t.Kind))
	}
	if _, err := schema.ParseGroupVersion(t.APIVersion); err != nil {
		return invalid(fmt.Errorf("target apiVersion %q: %w", t.APIVersion, err))
	}
	if err := Body(dpa.Spec.Constraints, dpa.Spec.Objectives); err != nil {
		return invalid(err)
	}
	return nil
}

// v1alpha1Only are the v1alpha1 spec fields that v1alpha2 does not have (it has applyPolicy and
// objectives instead): written as v1alpha1, the apiserver prunes them when it stores v1alpha2.
var v1alpha1Only = []string{"policy", "targets"}

// LostInConversion lists the v1alpha1-only spec fields (spec.policy, spec.targets) that a
// manager wrote through datadoghq.com/v1alpha1 and that the apiserver therefore dropped. The
// object no longer has them; its managedFields still say who set them, and through which
// version. The record stays: the apiserver cannot map those fields to v1alpha2, so later
// updates leave that managedFields entry as it is. Deleting the DPA and creating it as v1alpha2
// (or resetting its managedFields) clears it.
func LostInConversion(dpa *v1alpha2.DatadogPodAutoscaler) []string {
	var lost []string
	for _, m := range dpa.ManagedFields {
		if m.APIVersion != v1alpha2.GroupName+"/v1alpha1" || m.Subresource != "" || m.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if json.Unmarshal(m.FieldsV1.Raw, &fields) != nil {
			continue
		}
		for _, f := range v1alpha1Only {
			if _, ok := fields.Spec["f:"+f]; ok && !slices.Contains(lost, "spec."+f) {
				lost = append(lost, "spec."+f)
			}
		}
	}
	slices.Sort(lost)
	return lost
}

// Body checks the part of a DPA spec a cluster profile's template also has.
func Body(constraints *v1alpha2.DatadogPodAutoscalerConstraints, objectives []v1alpha2.DatadogPodAutoscalerObjective) error {
	if n := len(objectives); n > MaxObjectives {
		return fmt.Errorf("objectives: %d of them, at most %d", n, MaxObjectives)
	}
	if c := constraints; c != nil {
		if n := len(c.Containers); n > MaxContainers {
			return fmt.Errorf("constraints: %d containers, at most %d", n, MaxContainers)
		}
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
	t := dpa.Spec.TargetRef
	if n := len(tmpl.Spec.Containers) + len(tmpl.Spec.InitContainers); n > MaxContainers {
		return fmt.Errorf("%s %s has %d containers in its pod template: lazyscale autoscales at most %d", t.Kind, t.Name, n, MaxContainers)
	}
	scaled := def.ScaledContainers(&tmpl.Spec)
	has := func(name string) bool {
		return slices.ContainsFunc(scaled, func(c *corev1.Container) bool { return c.Name == name })
	}
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
	if p := dpa.Spec.ApplyPolicy; p != nil && p.Update != nil {
		if p.Update.ResizePendingPeriod > 0 && p.Update.Strategy != "" && p.Update.Strategy != v1alpha2.DatadogPodAutoscalerAutoUpdateStrategy {
			out = append(out, "applyPolicy.update.resizePendingPeriod: only strategy Auto resizes pods in place")
		}
		if p.Update.RolloutFallbackDelay > 0 {
			out = append(out, "applyPolicy.update.rolloutFallbackDelay: lazyscale does not evict pods; a resize that cannot be done in place is rolled out at once")
		}
	}
	return out
}
