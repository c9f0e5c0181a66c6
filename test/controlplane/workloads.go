package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KwokNodeAnnotation marks the nodes kwok simulates.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// startWorkloadRunners starts kube-scheduler and kwok, and creates opts.Nodes simulated
// nodes; it returns once they are Ready.
func (cp *ControlPlane) startWorkloadRunners(ctx context.Context, opts Options, bin string, kube kubernetes.Interface) error {
	scheduler, err := builtBinary(bin, "kube-scheduler")
	if err != nil {
		return err
	}
	kwok, err := builtBinary(bin, "kwok")
	if err != nil {
		return err
	}
	stages := filepath.Join(filepath.Dir(kwok), "kwok-stages.yaml")
	if _, err := os.Stat(stages); err != nil {
		return fmt.Errorf("kwok's stages not found (run `make controlplane`): %w", err)
	}
	// The scheduler binds at the rates REALCLUSTER.md measured: at its default 50 QPS binding
	// is the bottleneck.
	cfg := filepath.Join(opts.Dir, "kube-scheduler.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: %q, qps: 500, burst: 1000}
leaderElection: {leaderElect: false}
`, cp.Kubeconfig)), 0o600); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	cp.scheduler, err = cp.spawn(opts, "kube-scheduler", scheduler, "--config="+cfg,
		"--authentication-kubeconfig="+cp.Kubeconfig, "--authorization-kubeconfig="+cp.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port), "--v=0")
	if err != nil {
		return err
	}
	if err := cp.waitHTTP(ctx, cp.scheduler, "https://127.0.0.1:"+strconv.Itoa(port)+"/readyz", loopbackHealth); err != nil {
		return fmt.Errorf("kube-scheduler not ready: %w", err)
	}

	// Live usage (SetUsage in testenv) is a kwok ClusterResourceUsage: its CRDs first.
	if out, err := exec.CommandContext(ctx, KubectlPath(), "--kubeconfig", cp.Kubeconfig, "apply", "-f",
		filepath.Join(filepath.Dir(kwok), "kwok-crds.yaml")).CombinedOutput(); err != nil {
		return fmt.Errorf("kwok's CRDs: %w\n%s", err, out)
	}
	kwokPort, err := freePort()
	if err != nil {
		return err
	}
	cp.kwok, err = cp.spawn(opts, "kwok", kwok, "--kubeconfig="+cp.Kubeconfig, "--config="+stages,
		"--enable-crds=ResourceUsage,ClusterResourceUsage",
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector="+KwokNodeAnnotation+"=fake",
		"--cidr=10.244.0.0/16", "--node-ip=127.0.0.1",
		"--node-port="+strconv.Itoa(kwokPort), "--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
		"--node-lease-duration-seconds=40")
	if err != nil {
		return err
	}
	if err := cp.waitHTTP(ctx, cp.kwok, "http://127.0.0.1:"+strconv.Itoa(kwokPort)+"/healthz", nil); err != nil {
		return fmt.Errorf("kwok not healthy: %w", err)
	}
	for i := range opts.Nodes {
		if _, err := kube.CoreV1().Nodes().Create(ctx, FakeNode(fmt.Sprintf("kwok-node-%d", i)), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node: %w", err)
		}
	}
	if err := cp.waitAlive(ctx, cp.kwok, func() bool {
		nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= opts.Nodes
	}, "nodes Ready"); err != nil {
		return err
	}
	if opts.MetricsServer {
		return cp.startMetricsServer(ctx, opts, bin)
	}
	return nil
}

// FakeNode is a node kwok simulates: 32 CPUs, 128 GiB, 110 pods.
func FakeNode(name string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods: resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{KwokNodeAnnotation: "fake",
			// Where metrics-server scrapes the node (kwok serves it).
			"metrics.k8s.io/resource-metrics-path": "/metrics/nodes/" + name + "/metrics/resource"},
			Labels: map[string]string{"type": "kwok", corev1.LabelHostname: name}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}
