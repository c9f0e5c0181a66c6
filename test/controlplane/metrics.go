package controlplane

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

var apiServicesResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// startMetricsServer runs metrics-server on loopback, scraping kwok's nodes, and registers it
// as v1beta1.metrics.k8s.io through an ExternalName Service (the aggregator refuses loopback
// Endpoints); it returns once the APIService is Available.
func (cp *ControlPlane) startMetricsServer(ctx context.Context, opts Options, bin string) error {
	path, err := builtBinary(bin, "metrics-server")
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	cp.metricsServer, err = cp.spawn(opts, "metrics-server", path,
		"--kubeconfig="+cp.Kubeconfig,
		"--authentication-kubeconfig="+cp.Kubeconfig, "--authorization-kubeconfig="+cp.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(opts.Dir, "metrics-server"),
		"--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP", "--kubelet-use-node-status-port",
		"--metric-resolution=10s", "--kubelet-request-timeout=5s")
	if err != nil {
		return err
	}
	if err := cp.waitHTTP(ctx, cp.metricsServer, "https://127.0.0.1:"+strconv.Itoa(port)+"/livez", loopbackHealth); err != nil {
		return fmt.Errorf("metrics-server not live: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	if _, err := kube.CoreV1().Services("kube-system").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server", Namespace: "kube-system"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}}},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("metrics-server Service: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1beta1.metrics.k8s.io"},
		"spec": map[string]any{
			"group": "metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": true,
			"groupPriorityMinimum": int64(100), "versionPriority": int64(100),
			"service": map[string]any{"namespace": "kube-system", "name": "metrics-server", "port": int64(port)},
		},
	}}
	if _, err := dyn.Resource(apiServicesResource).Create(ctx, apiService, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("metrics APIService: %w", err)
	}
	return cp.waitAlive(ctx, cp.metricsServer, func() bool {
		u, err := dyn.Resource(apiServicesResource).Get(ctx, "v1beta1.metrics.k8s.io", metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Available" && m["status"] == "True" {
				return true
			}
		}
		return false
	}, "APIService v1beta1.metrics.k8s.io Available")
}
