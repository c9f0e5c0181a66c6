package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
)

// Pod usage on kwok's nodes: metrics-server reports, for each container, the usage kwok
// computes from one ClusterResourceUsage, which SetUsage writes. A pod's own annotations
// (UsageCPUAnnotation, UsageMemoryAnnotation) win; then the usage set for its Deployment;
// else 1m and 1Mi. The table of Deployments is kept in the object itself, so any process
// (a test, `bin/localcluster usage`) can change one entry.
//
// A Deployment's CPU can also be a load its pods share (Usage.Shared), as behind a load
// balancer: each running pod then uses the total divided by their number, so adding replicas
// lowers it, as a real load would. The split is rewritten as pods come and go by the process
// that started the control plane (ControlPlane.Start with MetricsServer), every 2 s.
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
	// Shared: CPU is the whole Deployment's, split evenly across its running pods; Memory
	// stays per container.
	Shared bool `json:"shared,omitempty"`
}

// usageClients are what SetUsage and the load loop need.
type usageClients struct {
	res  dynamic.ResourceInterface
	kube kubernetes.Interface
}

func newUsageClients(cfg *rest.Config) (usageClients, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return usageClients{}, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return usageClients{}, err
	}
	return usageClients{res: dyn.Resource(clusterResourceUsages), kube: kube}, nil
}

// SetUsage sets the usage of each container of Deployment ns/name's pods, those running now and
// those it creates later, in the cluster of cfg (one with Nodes). metrics-server shows it
// after its next scrapes (about 20 s).
func SetUsage(ctx context.Context, cfg *rest.Config, ns, deployment string, u Usage) error {
	for _, q := range []string{u.CPU, u.Memory} {
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("usage %q: %w", q, err)
		}
	}
	c, err := newUsageClients(cfg)
	if err != nil {
		return err
	}
	return c.write(ctx, func(table map[string]Usage) { table[ns+"/"+deployment] = u })
}

// refresh rewrites the expression if a shared load's split changed (pods came or went).
func (c usageClients) refresh(ctx context.Context) error {
	return c.write(ctx, func(map[string]Usage) {})
}

// write applies change to the table and writes the object if its table or expression changed.
// The split goroutine and SetUsage write it concurrently: a write that lost the race (the object
// created or changed meanwhile) is done again on what the other wrote.
func (c usageClients) write(ctx context.Context, change func(map[string]Usage)) error {
	return retry.OnError(retry.DefaultRetry, func(err error) bool {
		return apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err)
	}, func() error { return c.writeOnce(ctx, change) })
}

func (c usageClients) writeOnce(ctx context.Context, change func(map[string]Usage)) error {
	cur, err := c.res.Get(ctx, usageObject, metav1.GetOptions{})
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
	} else {
		cur = nil
	}
	change(table)
	if cur == nil && len(table) == 0 {
		return nil // nothing to write yet (the split goroutine before the first SetUsage)
	}
	raw, err := json.Marshal(table)
	if err != nil {
		return err
	}
	perPod, err := c.perPodCPU(ctx, table)
	if err != nil {
		return err
	}
	spec := map[string]any{"usages": []any{map[string]any{"usage": map[string]any{
		"cpu":    map[string]any{"expression": usageExpression(table, UsageCPUAnnotation, "1m", func(k string, _ Usage) string { return perPod[k] })},
		"memory": map[string]any{"expression": usageExpression(table, UsageMemoryAnnotation, "1Mi", func(_ string, u Usage) string { return u.Memory })},
	}}}}
	if cur != nil && cur.GetAnnotations()[usageTableAnnotation] == string(raw) && equality.Semantic.DeepEqual(cur.Object["spec"], spec) {
		return nil
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterResourceUsage",
		"metadata": map[string]any{"name": usageObject, "annotations": map[string]any{usageTableAnnotation: string(raw)}},
		"spec":     spec,
	}}
	if cur == nil {
		_, err = c.res.Create(ctx, obj, metav1.CreateOptions{})
	} else {
		obj.SetResourceVersion(cur.GetResourceVersion())
		_, err = c.res.Update(ctx, obj, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("write usage: %w", err) // %w: write retries on AlreadyExists and Conflict
	}
	return nil
}

// perPodCPU is each entry's CPU per pod: as set, or for a shared load the total over the
// Deployment's running pods (the total while none runs).
func (c usageClients) perPodCPU(ctx context.Context, table map[string]Usage) (map[string]string, error) {
	out := map[string]string{}
	for k, u := range table {
		out[k] = u.CPU
		if !u.Shared {
			continue
		}
		ns, name, _ := strings.Cut(k, "/")
		n, err := c.runningPods(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			total := resource.MustParse(u.CPU)
			out[k] = fmt.Sprintf("%dm", total.MilliValue()/int64(n))
		}
	}
	return out, nil
}

// runningPods counts a Deployment's running pods (0 if it does not exist).
func (c usageClients) runningPods(ctx context.Context, ns, name string) (int, error) {
	d, err := c.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return 0, err
	}
	pods, err := RunningPods(ctx, c.kube, ns, sel.String())
	return len(pods), err
}

// RunningPods are the pods of ns matching selector that run on a node and are not going away:
// what a user counts as a workload's running pods.
func RunningPods(ctx context.Context, kube kubernetes.Interface, ns, selector string) ([]corev1.Pod, error) {
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector, FieldSelector: "status.phase=Running"})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Spec.NodeName != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// splitLoads keeps the shared loads' split current until ctx ends (see Usage.Shared).
func splitLoads(ctx context.Context, cfg *rest.Config) {
	c, err := newUsageClients(cfg)
	if err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		_ = c.refresh(ctx) // the next tick retries; the cluster may be stopping
	}
}

// usageExpression is the CEL kwok evaluates per container: the pod's annotation, else the
// first Deployment whose pods' names match, else def.
func usageExpression(table map[string]Usage, annotation, def string, value func(string, Usage) string) string {
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
			ns, "^"+regexp.QuoteMeta(name)+"-[a-z0-9]+-[a-z0-9]+$", value(k, table[k]))
	}
	fmt.Fprintf(&b, "Quantity(%q)", def)
	return b.String()
}
