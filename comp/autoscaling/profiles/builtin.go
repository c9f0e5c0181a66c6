package profiles

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/apiobject"
	"github.com/lazyscale/lazyscale/comp/kubeclient/informer"
)

// The built-in cluster profiles: the Datadog Cluster Agent's, by name and values. The Cluster
// Agent creates them at start and resets them when edited; lazyscale does so only once a
// workload or namespace is labelled with one of their names (label-filtered watches on the
// leader), so that a cluster that does not use them never pays for the profile controller's
// watches of every workload.
const (
	// BuiltinLabel marks a built-in profile, with BuiltinLabelValue (the Cluster Agent's).
	BuiltinLabel      = "autoscaling.datadoghq.com/managed-by"
	BuiltinLabelValue = "datadog"
	// builtinKey is the queue key that resets the built-in profiles.
	builtinKey = "builtin-profiles"
)

// builtinScaling is one direction's policy of a built-in profile.
func builtinScaling(strategy string, window int64, percent, period int64) map[string]any {
	p := map[string]any{}
	if strategy != "" {
		p["strategy"] = strategy
	}
	if window > 0 {
		p["stabilizationWindowSeconds"] = window
	}
	if percent > 0 {
		p["rules"] = []any{map[string]any{"type": "Percent", "value": percent, "periodSeconds": period}}
	}
	return p
}

// horizontalBuiltin is a built-in profile that scales on pod CPU.
func horizontalBuiltin(up, down map[string]any, minReplicas, cpu int64) map[string]any {
	return map[string]any{
		"applyPolicy": map[string]any{"mode": "Apply", "scaleUp": up, "scaleDown": down},
		"constraints": map[string]any{"minReplicas": minReplicas},
		"objectives": []any{map[string]any{"type": "PodResource",
			"podResource": map[string]any{"name": "cpu", "value": map[string]any{"type": "Utilization", "utilization": cpu}}}},
		"fallback": map[string]any{"horizontal": map[string]any{"enabled": true, "direction": "ScaleUp",
			"triggers": map[string]any{"staleRecommendationThresholdSeconds": int64(600)}}},
	}
}

// builtinTemplates are the templates of the built-in profiles, by name.
func builtinTemplates() map[string]map[string]any {
	return map[string]map[string]any{
		"datadog-optimize-cost":        horizontalBuiltin(builtinScaling("", 190, 50, 120), builtinScaling("Max", 300, 50, 120), 1, 85),
		"datadog-optimize-balance":     horizontalBuiltin(builtinScaling("Max", 130, 50, 120), builtinScaling("Max", 600, 20, 1200), 2, 70),
		"datadog-optimize-performance": horizontalBuiltin(builtinScaling("Max", 70, 50, 120), builtinScaling("Max", 900, 10, 1800), 3, 60),
		"datadog-vertical-only": {
			"applyPolicy": map[string]any{"mode": "Apply", "scaleUp": builtinScaling("Disabled", 0, 0, 0),
				"scaleDown": builtinScaling("Disabled", 0, 0, 0), "update": map[string]any{"strategy": "Auto"}},
			"constraints": map[string]any{"containers": []any{map[string]any{"name": "*", "enabled": true}}},
			"fallback":    map[string]any{"horizontal": map[string]any{"enabled": false}},
		},
	}
}

// builtinNames are the built-in profiles' names, sorted.
var builtinNames = slices.Sorted(maps.Keys(builtinTemplates()))

// BuiltinNames are the built-in profiles' names, sorted.
func BuiltinNames() []string { return slices.Clone(builtinNames) }

// isBuiltinName reports a reserved name, whoever manages the profile.
func isBuiltinName(name string) bool { return slices.Contains(builtinNames, name) }

// isBuiltin reports a profile managed as a built-in one.
func isBuiltin(m metav1.Object) bool {
	return isBuiltinName(m.GetName()) && m.GetLabels()[BuiltinLabel] == BuiltinLabelValue
}

// watchBuiltinUse follows, for the term, the Deployments, StatefulSets and Namespaces labelled
// with a built-in profile's name: label-filtered metadata watches, which hold only those. The
// first one makes the controller needed and the built-in profiles created.
func (p *Controller) watchBuiltinUse(ctx context.Context, used func()) {
	sel := fmt.Sprintf("%s in (%s)", v1alpha2.ProfileLabel, strings.Join(builtinNames, ","))
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, gvr := range []schema.GroupVersionResource{v1alpha2.NamespacesResource, v1alpha2.DeploymentsResource, v1alpha2.StatefulSetsResource} {
		inf := informer.New(informer.Metadata(p.md.Resource(gvr), informer.Options{LabelSelector: sel}), &metav1.PartialObjectMetadata{},
			cache.Indexers{}, informer.NewWatchErrors(p.log, gvr.Resource+" labelled with a built-in profile"))
		// A new use: an object appears with the label, or takes another built-in name. Its
		// other updates (a Deployment's status, each rollout) are not.
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { used() },
			UpdateFunc: func(old, obj any) {
				o, ok1 := old.(*metav1.PartialObjectMetadata)
				n, ok2 := obj.(*metav1.PartialObjectMetadata)
				if !ok1 || !ok2 || o.Labels[v1alpha2.ProfileLabel] != n.Labels[v1alpha2.ProfileLabel] {
					used()
				}
			},
		})
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
}

// ensureBuiltins creates the built-in profiles that are missing and resets those whose
// template or label was changed (a field the template sets with another value; fields the
// apiserver defaults are left alone).
func (p *Controller) ensureBuiltins(ctx context.Context) error {
	client := p.dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource)
	for name, template := range builtinTemplates() {
		desired := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha2.SchemeGroupVersion.String(), "kind": "DatadogPodAutoscalerClusterProfile",
			"metadata": map[string]any{"name": name, "labels": map[string]any{BuiltinLabel: BuiltinLabelValue}},
			"spec":     map[string]any{"template": template},
		}}
		existing, err := client.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if _, err := client.Create(ctx, desired, metav1.CreateOptions{FieldManager: apiobject.FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create built-in profile %s: %w", name, err)
			}
			p.log.Info("built-in cluster profile created", zap.String("profile", name))
			continue
		}
		if err != nil {
			return fmt.Errorf("read built-in profile %s: %w", name, err)
		}
		got, _, _ := unstructured.NestedMap(existing.Object, "spec", "template")
		if existing.GetLabels()[BuiltinLabel] == BuiltinLabelValue && subset(template, got) {
			continue
		}
		desired.SetResourceVersion(existing.GetResourceVersion())
		desired.SetAnnotations(existing.GetAnnotations())
		if _, err := client.Update(ctx, desired, metav1.UpdateOptions{FieldManager: apiobject.FieldManager}); err != nil {
			return fmt.Errorf("reset built-in profile %s: %w", name, err)
		}
		p.log.Info("built-in cluster profile reset to its definition", zap.String("profile", name))
	}
	return nil
}

// subset reports whether every field of want is in got with the same value (got may have
// more: the apiserver's defaults).
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got) || fmt.Sprint(want) == fmt.Sprint(got)
	}
}
