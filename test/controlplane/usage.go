package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Pod usage on kwok's nodes: metrics-server reports, for each container, the usage kwok
// computes from one ClusterResourceUsage, which SetUsage writes. A pod's own annotations
// (UsageCPUAnnotation, UsageMemoryAnnotation) win; then the usage set for its Deployment;
// else 1m and 1Mi. The table of Deployments is kept in the object itself, so any process
// (a test, `bin/localcluster usage`) can change one entry.
const (
	UsageCPUAnnotation    = "kwok.x-k8s.io/usage-cpu"
	UsageMemoryAnnotation = "kwok.x-k8s.io/usage-memory"
	usageObject           = "lazyscale-usage"
	usageTableAnnotation  = "lazyscale.dev/usage-table"
)

var clusterResourceUsages = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "clusterresourceusages"}

// Usage is one container's simulated usage.
type Usage struct {
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
}

// SetUsage sets the usage of each container of Deployment ns/name's pods, those running now and
// those it creates later, in the cluster of cfg (one with Nodes). metrics-server shows it
// after its next scrapes (about 20 s).
func SetUsage(ctx context.Context, cfg *rest.Config, ns, deployment string, u Usage) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	res := dyn.Resource(clusterResourceUsages)
	cur, err := res.Get(ctx, usageObject, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("read usage (a cluster with nodes?): %w", err)
	}
	table := map[string]Usage{}
	if err == nil {
		if raw := cur.GetAnnotations()[usageTableAnnotation]; raw != "" {
			if err := json.Unmarshal([]byte(raw), &table); err != nil {
				return fmt.Errorf("usage table: %w", err)
			}
		}
	}
	table[ns+"/"+deployment] = u
	raw, err := json.Marshal(table)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterResourceUsage",
		"metadata": map[string]any{"name": usageObject, "annotations": map[string]any{usageTableAnnotation: string(raw)}},
		"spec": map[string]any{"usages": []any{map[string]any{"usage": map[string]any{
			"cpu":    map[string]any{"expression": usageExpression(table, UsageCPUAnnotation, "1m", func(u Usage) string { return u.CPU })},
			"memory": map[string]any{"expression": usageExpression(table, UsageMemoryAnnotation, "1Mi", func(u Usage) string { return u.Memory })},
		}}}},
	}}
	if cur == nil {
		_, err = res.Create(ctx, obj, metav1.CreateOptions{})
	} else {
		obj.SetResourceVersion(cur.GetResourceVersion())
		_, err = res.Update(ctx, obj, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("write usage: %w", err)
	}
	return nil
}

// usageExpression is the CEL kwok evaluates per container: the pod's annotation, else the
// first Deployment whose pods' names match, else def.
func usageExpression(table map[string]Usage, annotation, def string, value func(Usage) string) string {
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%q in pod.metadata.annotations ? Quantity(pod.metadata.annotations[%q]) : ", annotation, annotation)
	for _, k := range keys {
		ns, name, _ := strings.Cut(k, "/")
		// A Deployment's pods are named <deployment>-<pod-template-hash>-<suffix>.
		fmt.Fprintf(&b, "(pod.metadata.namespace == %q && pod.metadata.name.matches(%q)) ? Quantity(%q) : ",
			ns, "^"+regexp.QuoteMeta(name)+"-[a-z0-9]+-[a-z0-9]+$", value(table[k]))
	}
	fmt.Fprintf(&b, "Quantity(%q)", def)
	return b.String()
}
