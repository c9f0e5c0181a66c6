package testenv

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"

	"github.com/lazyscale/lazyscale/test/controlplane"
)

// SetUsage sets the simulated usage of each container of Deployment ns/name's pods, current
// and future (a cluster with Nodes and MetricsServer; see controlplane.SetUsage).
func (e *Env) SetUsage(ns, deployment, cpu, memory string) {
	e.T.Helper()
	require.NoError(e.T, controlplane.SetUsage(context.Background(), e.CP.Config, ns, deployment, controlplane.Usage{CPU: cpu, Memory: memory}))
}

// SetLoad gives Deployment ns/name a CPU load its running pods share (each uses cpu divided
// by their number, rewritten as they come and go), and memory per container: adding
// replicas lowers each pod's CPU, as behind a load balancer.
func (e *Env) SetLoad(ns, deployment, cpu, memory string) {
	e.T.Helper()
	require.NoError(e.T, controlplane.SetUsage(context.Background(), e.CP.Config, ns, deployment, controlplane.Usage{CPU: cpu, Memory: memory, Shared: true}))
}

// SetPodUsage sets one pod's usage, over its Deployment's.
func (e *Env) SetPodUsage(ns, pod, cpu, memory string) {
	e.T.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:%q}}}`, controlplane.UsageCPUAnnotation, cpu, controlplane.UsageMemoryAnnotation, memory)
	_, err := e.Kube.CoreV1().Pods(ns).Patch(context.Background(), pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(e.T, err)
}

// WaitCPUUsage waits until metrics-server reports every container of the pods matching selector
// in ns (at least one pod) within 15 % of cpu: a change of SetUsage shows there after its next
// scrapes, about 20 s later.
func (e *Env) WaitCPUUsage(ns, selector, cpu string) {
	e.T.Helper()
	want := resource.MustParse(cpu)
	metrics, err := metricsclient.NewForConfig(e.CP.Config)
	require.NoError(e.T, err)
	var last string
	ok := assert.Eventually(e.T, func() bool {
		list, err := metrics.PodMetricses(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", list.Items)
		for _, p := range list.Items {
			for _, c := range p.Containers {
				if math.Abs(float64(c.Usage.Cpu().MilliValue()-want.MilliValue())) > 0.15*float64(want.MilliValue()) {
					return false
				}
			}
		}
		return len(list.Items) > 0
	}, WaitFor, 500*time.Millisecond)
	if !ok {
		require.FailNow(e.T, fmt.Sprintf("metrics-server never reported %s CPU for %s in %s", cpu, selector, ns), last)
	}
}

// RunningPods are app's pods (label app=app, as Deployment makes them) in ns that run on a node
// and are not going away.
func (e *Env) RunningPods(ns, app string) []corev1.Pod {
	e.T.Helper()
	pods, err := controlplane.RunningPods(context.Background(), e.Kube, ns, "app="+app)
	require.NoError(e.T, err)
	return pods
}
