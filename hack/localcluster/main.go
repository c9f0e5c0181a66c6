// Command localcluster is `make run`: it starts a local cluster on loopback (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok's simulated nodes and
// metrics-server), installs the CRDs, runs a demo Deployment on the nodes, runs the lazyscale
// binary against it and stops everything on Ctrl-C. `bin/localcluster load NS DEPLOYMENT CPU
// MEMORY` changes a Deployment's simulated load in the running cluster (CPU shared by its pods),
// `bin/localcluster usage ...` its usage per pod. With -as-pod (`make run-pod`) it applies
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
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/podrun"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "usage" || os.Args[1] == "load") {
		if err := usage(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "localcluster %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "tmp/localcluster", "working directory (recreated)")
	agent := flag.String("agent", "bin/lazyscale", "lazyscale binary")
	replicas := flag.Int("demo-replicas", 3, "replicas of the demo Deployment demo/web")
	nodes := flag.Int("nodes", 3, "simulated nodes")
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
	fmt.Printf("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (%d nodes) and metrics-server on loopback ...\n", *nodes)
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: abs, InstallCRDs: true, Nodes: *nodes, MetricsServer: true})
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
	if err := demo(ctx, cp, kube, int32(*replicas)); err != nil {
		return err
	}

	kubectl := controlplane.KubectlPath()
	status := "bin/lazyscale status --status-addr " + *statusAddr
	if *asPod {
		// The shipped install protects the status port (status.auth kubernetes): the status
		// command sends the token of the pod's ServiceAccount, which podrun writes here.
		status += " --kubeconfig " + filepath.Join(abs, "serviceaccount.kubeconfig")
	}
	page := "open http://" + *statusAddr + "/ui"
	if *asPod {
		// A browser cannot send the token: `lazyscale ui` serves the page with it.
		page = "bin/lazyscale ui --status-addr " + *statusAddr + " --kubeconfig " + filepath.Join(abs, "serviceaccount.kubeconfig") + "   # then open http://127.0.0.1:5081/ui"
	}
	fmt.Printf(`
control plane ready: %s (logs, audit log and kubeconfig in %s)

In another terminal (the README's quick start says what you will see):
  export KUBECONFIG=%s
  %s get pods -n demo -o wide                   # demo/web runs on kwok's nodes
  %s       # dormant: no pod list, no pod watch
  %s apply -f deploy/examples/dpa-preview.yaml  # opens the gate; Preview: recommends, changes nothing
  %s       # the page: what it would change, per container and in total
  %s apply -f deploy/examples/dpa.yaml          # the same DPA in Apply: web's pods are resized in place
  %s       # pod collection synced, stack running
  bin/localcluster load demo web 900m 128Mi     # load up: the local recommender scales web out

Ctrl-C stops the agent and the cluster.

`, cp.URL, abs, cp.Kubeconfig, kubectl, status, kubectl, page, kubectl, status)

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

// demo creates the namespace demo and the Deployment web, waits until its pods run on the
// simulated nodes, and gives it a load of 180m CPU its pods share (60m each at 3 replicas) and
// 100Mi of memory per pod.
func demo(ctx context.Context, cp *controlplane.ControlPlane, kube kubernetes.Interface, replicas int32) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return err
	}
	labels := map[string]string{"app": "web"}
	_, err := kube.AppsV1().Deployments("demo").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/web:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
				}},
			}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if err := controlplane.SetUsage(ctx, cp.Config, "demo", "web", controlplane.Usage{CPU: "180m", Memory: "100Mi", Shared: true}); err != nil {
		return err
	}
	fmt.Printf("waiting for demo/web's %d pods to run ...\n", replicas)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, err := kube.CoreV1().Pods("demo").List(ctx, metav1.ListOptions{LabelSelector: "app=web", FieldSelector: "status.phase=Running"})
		if err == nil && len(pods.Items) >= int(replicas) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo/web's pods never ran: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// usage is `bin/localcluster usage|load NS DEPLOYMENT CPU MEMORY` against the running cluster:
// usage sets each pod's CPU, load the Deployment's whole CPU, shared by its running pods.
func usage(verb string, args []string) error {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	dir := fs.String("dir", "tmp/localcluster", "the running cluster's working directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 4 {
		return fmt.Errorf("want NAMESPACE DEPLOYMENT CPU MEMORY, e.g. demo web 900m 128Mi")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(*dir, "kubeconfig"))
	if err != nil {
		return fmt.Errorf("is make run running? %w", err)
	}
	a := fs.Args()
	u := controlplane.Usage{CPU: a[2], Memory: a[3], Shared: verb == "load"}
	if err := controlplane.SetUsage(context.Background(), cfg, a[0], a[1], u); err != nil {
		return err
	}
	if u.Shared {
		fmt.Printf("%s/%s: its running pods now share %s CPU, each uses %s of memory (metrics-server shows it within about 20 s)\n", a[0], a[1], a[2], a[3])
	} else {
		fmt.Printf("%s/%s: each container now uses %s CPU and %s (metrics-server shows it within about 20 s)\n", a[0], a[1], a[2], a[3])
	}
	return nil
}
