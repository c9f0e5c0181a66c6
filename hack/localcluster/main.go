// Command localcluster is `make run`: it starts a local control plane (etcd +
// kube-apiserver on loopback), installs the CRDs, creates a few demo pods, runs the lazyscale
// binary against it and stops everything on Ctrl-C. With -as-pod (`make run-pod`) it applies
// deploy/lazyscale.yaml (the chart's defaults) and runs the binary as that Deployment's
// container would run: its args and config, its env, the kubelet's service links and its
// ServiceAccount's token (only the webhook's address is moved to loopback).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/podrun"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "tmp/localcluster", "working directory (recreated)")
	agent := flag.String("agent", "bin/lazyscale", "lazyscale binary")
	pods := flag.Int("demo-pods", 30, "demo pods to create in namespace demo")
	statusAddr := flag.String("status-addr", "127.0.0.1:5080", "agent status address")
	admissionPort := flag.Int("admission-port", 8000, "agent webhook port on 127.0.0.1")
	asPod := flag.Bool("as-pod", false, "apply deploy/lazyscale.yaml and run the agent as its pod would")
	flag.Parse()
	agentArgs := flag.Args()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	fmt.Println("starting etcd and kube-apiserver on loopback ...")
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: abs, InstallCRDs: true})
	if err != nil {
		return err
	}
	defer cp.Stop()
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	// lazyscale's own namespace: its webhook certificate Secret lives there.
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lazyscale"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := demoPods(ctx, kube, *pods); err != nil {
		return err
	}

	kubectl := controlplane.KubectlPath()
	fmt.Printf(`
control plane ready: %s (logs, audit log and kubeconfig in %s)

In another terminal:
  export KUBECONFIG=%s
  %s get pods -n demo
  bin/lazyscale status --status-addr %s       # dormant: no pod list, no pod watch
  %s apply -f deploy/examples/dpa.yaml          # opens the gate
  bin/lazyscale status --status-addr %s       # pod collection synced, stack running
  %s get dpa -n demo web -o yaml                # status: the vertical recommendation, conditions
  %s get deploy -n demo web -o jsonpath='{.spec.template.metadata.annotations}'   # the rollout

Ctrl-C stops the agent and the control plane.

`, cp.URL, abs, cp.Kubeconfig, kubectl, *statusAddr, kubectl, *statusAddr, kubectl, kubectl)

	var cmd *exec.Cmd
	if *asPod {
		if out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", cp.Kubeconfig, "apply", "-f", "deploy/lazyscale.yaml").CombinedOutput(); err != nil {
			return fmt.Errorf("apply deploy/lazyscale.yaml: %w\n%s", err, out)
		}
		pod := podrun.Pod{Kube: kube, Kubeconfig: cp.Kubeconfig, Namespace: "lazyscale", Deployment: "lazyscale", PodName: "lazyscale-local",
			Dir: abs, Config: map[string]any{"admission": map[string]any{"bind_address": "127.0.0.1", "port": *admissionPort,
				"url": fmt.Sprintf("https://127.0.0.1:%d", *admissionPort)}}}
		if cmd, err = pod.Command(ctx, *agent, append([]string{"--status-addr", *statusAddr}, agentArgs...)...); err != nil {
			return err
		}
		fmt.Printf("running the agent as deploy/lazyscale.yaml's pod: %v\n\n", cmd.Args)
	} else {
		cmd = exec.CommandContext(ctx, *agent, append([]string{"run", "--kubeconfig", cp.Kubeconfig, "--status-addr", *statusAddr}, agentArgs...)...)
		// The local apiserver calls the local agent's webhook by URL.
		cmd.Env = append(os.Environ(), "LAZYSCALE_ADMISSION_BIND_ADDRESS=127.0.0.1",
			fmt.Sprintf("LAZYSCALE_ADMISSION_PORT=%d", *admissionPort),
			fmt.Sprintf("LAZYSCALE_ADMISSION_URL=https://127.0.0.1:%d", *admissionPort))
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		fmt.Println("\nstopping the control plane ...")
		return nil
	}
	return fmt.Errorf("agent exited: %w", err)
}

// demoPods creates a namespace "demo" with Deployment "web", its ReplicaSet and n pods of it,
// as a Deployment controller would (there is none here), with Running/Ready status written by
// hand.
func demoPods(ctx context.Context, kube kubernetes.Interface, n int) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}
	container := corev1.Container{
		Name: "app", Image: "registry.example/web:1",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
		}},
	}
	labels := map[string]string{"app": "web"}
	deploy, err := kube.AppsV1().Deployments("demo").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{container}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	rsLabels := map[string]string{"app": "web", "pod-template-hash": "5d8f7b9c4"}
	rs, err := kube.AppsV1().ReplicaSets("demo").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f7b9c4", Namespace: "demo", Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: deploy.UID, Controller: ptr(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: rsLabels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: rsLabels}, Spec: corev1.PodSpec{Containers: []corev1.Container{container}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	for i := range n {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name:      fmt.Sprintf("web-5d8f7b9c4-%05d", i),
				Namespace: "demo",
				Labels:    map[string]string{"app": "web", "pod-template-hash": "5d8f7b9c4"},
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr(true),
				}},
			},
			Spec: corev1.PodSpec{Containers: []corev1.Container{container}},
		}
		created, err := kube.CoreV1().Pods("demo").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		created.Status.Phase = corev1.PodRunning
		created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := kube.CoreV1().Pods("demo").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
