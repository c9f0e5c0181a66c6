package testenv

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Pod usage on kwok nodes (a cluster with Nodes and MetricsServer): metrics-server reports,
// for each container, the usage kwok computes from one ClusterResourceUsage that this file
// writes. A pod's own annotations (UsageCPUAnnotation, UsageMemoryAnnotation) win; then the
// usage set for its Deployment; else 1m and 1Mi.
const (
	UsageCPUAnnotation    = "kwok.x-k8s.io/usage-cpu"
	UsageMemoryAnnotation = "kwok.x-k8s.io/usage-memory"
	usageObject           = "lazyscale-test-usage"
)

var clusterResourceUsages = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "clusterresourceusages"}

type workloadUsage struct{ cpu, memory string }

type usageTable struct {
	mu sync.Mutex
	by map[string]workloadUsage // namespace/deployment
}

// SetUsage sets the usage of each container of Deployment ns/name's pods, those running now
// and those it creates later (a scale-up's pods start at this usage too). It shows in the
// metrics API after metrics-server's next scrapes (about 20 s).
func (e *Env) SetUsage(ns, deployment, cpu, memory string) {
	e.T.Helper()
	e.usage.mu.Lock()
	defer e.usage.mu.Unlock()
	if e.usage.by == nil {
		e.usage.by = map[string]workloadUsage{}
	}
	e.usage.by[ns+"/"+deployment] = workloadUsage{cpu: cpu, memory: memory}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterResourceUsage",
		"metadata": map[string]any{"name": usageObject},
		"spec": map[string]any{"usages": []any{map[string]any{"usage": map[string]any{
			"cpu":    map[string]any{"expression": e.usage.expression(UsageCPUAnnotation, "1m", func(u workloadUsage) string { return u.cpu })},
			"memory": map[string]any{"expression": e.usage.expression(UsageMemoryAnnotation, "1Mi", func(u workloadUsage) string { return u.memory })},
		}}}},
	}}
	res := e.Dyn.Resource(clusterResourceUsages)
	ctx := context.Background()
	cur, err := res.Get(ctx, usageObject, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = res.Create(ctx, obj, metav1.CreateOptions{})
	case err == nil:
		obj.SetResourceVersion(cur.GetResourceVersion())
		_, err = res.Update(ctx, obj, metav1.UpdateOptions{})
	}
	require.NoError(e.T, err, "set usage (a cluster with Nodes and MetricsServer?)")
}

// SetPodUsage sets one pod's usage, over its Deployment's.
func (e *Env) SetPodUsage(ns, pod, cpu, memory string) {
	e.T.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:%q}}}`, UsageCPUAnnotation, cpu, UsageMemoryAnnotation, memory)
	_, err := e.Kube.CoreV1().Pods(ns).Patch(context.Background(), pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(e.T, err)
}

// expression is the CEL kwok evaluates per container: the pod's annotation, else the first
// Deployment whose pods' names match, else def.
func (t *usageTable) expression(annotation, def string, value func(workloadUsage) string) string {
	keys := make([]string, 0, len(t.by))
	for k := range t.by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%q in pod.metadata.annotations ? Quantity(pod.metadata.annotations[%q]) : ", annotation, annotation)
	for _, k := range keys {
		ns, name, _ := strings.Cut(k, "/")
		// A Deployment's pods are named <deployment>-<pod-template-hash>-<suffix>.
		fmt.Fprintf(&b, "(pod.metadata.namespace == %q && pod.metadata.name.matches(%q)) ? Quantity(%q) : ",
			ns, "^"+regexp.QuoteMeta(name)+"-[a-z0-9]+-[a-z0-9]+$", value(t.by[k]))
	}
	fmt.Fprintf(&b, "Quantity(%q)", def)
	return b.String()
}
