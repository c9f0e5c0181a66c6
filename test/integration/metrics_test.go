package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/lazyscale/lazyscale/test/testenv"
)

// metricsServer is a real HTTPS server speaking the metrics.k8s.io/v1beta1 API (discovery
// and PodMetrics lists), registered with the local kube-apiserver as the APIService
// v1beta1.metrics.k8s.io: lazyscale reaches it through the apiserver's aggregation layer,
// exactly as it reaches metrics-server in a cluster. The Service behind the APIService is an
// ExternalName service naming 127.0.0.1 (the apiserver resolves it without endpoints).
type metricsServer struct {
	*httptest.Server
	mu sync.Mutex
	// usage is each pod's per-container usage, by namespace/pod.
	usage map[string]map[string]corev1.ResourceList
	// selectors are the label selectors of the PodMetrics lists received.
	selectors []string
}

func (e *env) startMetricsServer() *metricsServer {
	e.T.Helper()
	// The aggregator checks the certificate for the Service's DNS name.
	ca, certPEM, keyPEM, err := testenv.ServingCert("metrics-server.metrics.svc")
	require.NoError(e.T, err)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(e.T, err)
	m := &metricsServer{usage: map[string]map[string]corev1.ResourceList{}}
	m.Server = httptest.NewUnstartedServer(http.HandlerFunc(m.serve))
	m.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	m.StartTLS()
	e.T.Cleanup(m.Close)

	_, portStr, _ := net.SplitHostPort(m.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	ctx := context.Background()
	e.Namespace("metrics", nil)
	_, err = e.Kube.CoreV1().Services("metrics").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}}},
	}, metav1.CreateOptions{})
	require.NoError(e.T, err)
	apiServices := e.Dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	_, err = apiServices.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1beta1.metrics.k8s.io"},
		"spec": map[string]any{
			"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": int64(100), "versionPriority": int64(100),
			"service":  map[string]any{"namespace": "metrics", "name": "metrics-server", "port": int64(port)},
			"caBundle": ca,
		},
	}}, metav1.CreateOptions{})
	require.NoError(e.T, err)
	require.Eventually(e.T, func() bool {
		u, err := apiServices.Get(ctx, "v1beta1.metrics.k8s.io", metav1.GetOptions{})
		require.NoError(e.T, err)
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if c, ok := c.(map[string]any); ok && c["type"] == "Available" && c["status"] == "True" {
				return true
			}
		}
		return false
	}, waitFor, 200*time.Millisecond, "the metrics APIService never became available")
	return m
}

// setUsage sets the usage of the "app" container of pods (the sidecar uses 1m and 8Mi).
func (m *metricsServer) setUsage(ns, cpu, memory string, pods ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range pods {
		m.usage[ns+"/"+p] = map[string]corev1.ResourceList{
			"app":     {corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)},
			"sidecar": {corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("8Mi")},
		}
	}
}

func (m *metricsServer) listed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.selectors...)
}

func (m *metricsServer) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "/apis/metrics.k8s.io/v1beta1" {
		_ = json.NewEncoder(w).Encode(metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "metrics.k8s.io/v1beta1", APIResources: []metav1.APIResource{
				{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: metav1.Verbs{"get", "list"}},
				{Name: "nodes", Kind: "NodeMetrics", Verbs: metav1.Verbs{"get", "list"}},
			}})
		return
	}
	rest, ok := strings.CutPrefix(path, "/apis/metrics.k8s.io/v1beta1/namespaces/")
	ns, res, _ := strings.Cut(rest, "/")
	if !ok || res != "pods" {
		http.NotFound(w, r)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.selectors = append(m.selectors, r.URL.Query().Get("labelSelector"))
	now := metav1.NewTime(time.Now())
	list := metricsv1beta1.PodMetricsList{TypeMeta: metav1.TypeMeta{Kind: "PodMetricsList", APIVersion: "metrics.k8s.io/v1beta1"}}
	for key, containers := range m.usage {
		podNS, pod, _ := strings.Cut(key, "/")
		if podNS != ns {
			continue
		}
		pm := metricsv1beta1.PodMetrics{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns}, Timestamp: now, Window: metav1.Duration{Duration: 15 * time.Second}}
		for name, u := range containers {
			pm.Containers = append(pm.Containers, metricsv1beta1.ContainerMetrics{Name: name, Usage: u})
		}
		list.Items = append(list.Items, pm)
	}
	_ = json.NewEncoder(w).Encode(list)
}
