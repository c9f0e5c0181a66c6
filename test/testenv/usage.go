package testenv

import (
	"context"
	"fmt"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/test/controlplane"
)

// SetUsage sets the simulated usage of each container of Deployment ns/name's pods, current
// and future (a cluster with Nodes and MetricsServer; see controlplane.SetUsage).
func (e *Env) SetUsage(ns, deployment, cpu, memory string) {
	e.T.Helper()
	require.NoError(e.T, controlplane.SetUsage(context.Background(), e.CP.Config, ns, deployment, controlplane.Usage{CPU: cpu, Memory: memory}))
}

// SetPodUsage sets one pod's usage, over its Deployment's.
func (e *Env) SetPodUsage(ns, pod, cpu, memory string) {
	e.T.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:%q}}}`, controlplane.UsageCPUAnnotation, cpu, controlplane.UsageMemoryAnnotation, memory)
	_, err := e.Kube.CoreV1().Pods(ns).Patch(context.Background(), pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(e.T, err)
}
