// Package testenv is the shared fixture of lazyscale's real-apiserver tests and benchmarks:
// a fresh control plane per test (NewEnv, NewEnvWith) or one per package (Shared), helpers that create pods, workloads and DPAs the way
// controllers would, and a reader of the apiserver's audit log.
package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/core/version"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testpki"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
)

const WaitFor = 60 * time.Second

type Env struct {
	T    testing.TB
	CP   *controlplane.ControlPlane
	Kube kubernetes.Interface
	Dyn  dynamic.Interface

	// shared is set on a Shared control plane; namespaces and profiles are what the test
	// created there, deleted at its end; auditFrom is where its part of the audit log starts.
	shared     *Shared
	namespaces []string
	profiles   []string
	auditFrom  int64
}

// newEnv starts a fresh control plane for one test, with the CRDs unless withoutCRDs.
func NewEnv(t testing.TB, withCRDs bool) *Env {
	t.Helper()
	return NewEnvWith(t, controlplane.Options{InstallCRDs: withCRDs})
}

// NewEnvWith starts a fresh control plane with opts (Dir is the test's temporary directory).
func NewEnvWith(t testing.TB, opts controlplane.Options) *Env {
	t.Helper()
	ctx := context.Background()
	opts.Dir = t.TempDir()
	cp, err := controlplane.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(cp.Stop)
	// lazyscale's own namespace, as a deployment has it: the leader Lease and the webhook
	// certificate Secret live there.
	require.NoError(t, createNamespace(cp, "lazyscale"))
	return newEnvOn(t, cp)
}

func newEnvOn(t testing.TB, cp *controlplane.ControlPlane) *Env {
	t.Helper()
	e := &Env{T: t, CP: cp}
	var err error
	e.Kube, err = kubernetes.NewForConfig(cp.Config)
	require.NoError(t, err)
	e.Dyn, err = dynamic.NewForConfig(cp.Config)
	require.NoError(t, err)
	return e
}

func (e *Env) InstallCRDs() {
	dir, err := controlplane.CRDDir()
	require.NoError(e.T, err)
	require.NoError(e.T, controlplane.InstallCRDs(context.Background(), e.CP.Config, dir))
}

// AuditEvent is the part of an audit.k8s.io/v1 Event the tests read.
type AuditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	UserAgent  string `json:"userAgent"`
	ObjectRef  *struct {
		Resource string `json:"resource"`
		APIGroup string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	// RequestReceivedTimestamp is when the apiserver received the request; StageTimestamp when
	// it answered (the events kept are those of the ResponseComplete stage).
	RequestReceivedTimestamp metav1.MicroTime `json:"requestReceivedTimestamp"`
	StageTimestamp           metav1.MicroTime `json:"stageTimestamp"`
}

// LazyscaleRequests returns the requests lazyscale made for resource (all if empty), one per
// request, from the apiserver's own audit log. A plain resource name ("pods") matches every
// API group but the metrics API's; "pods.metrics.k8s.io" (kubectl's notation) matches that
// group only.
func (e *Env) LazyscaleRequests(resource string, verbs ...string) []AuditEvent {
	e.T.Helper()
	f, err := os.Open(e.CP.AuditLog)
	require.NoError(e.T, err)
	defer f.Close()
	_, err = f.Seek(e.auditFrom, io.SeekStart)
	require.NoError(e.T, err)
	seen := map[string]bool{}
	var out []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev AuditEvent
		require.NoError(e.T, json.Unmarshal(sc.Bytes(), &ev))
		if !strings.HasPrefix(ev.UserAgent, version.UserAgent()) || seen[ev.AuditID] {
			continue
		}
		if resource != "" && (ev.ObjectRef == nil || !matchesResource(resource, ev.ObjectRef.Resource, ev.ObjectRef.APIGroup)) {
			continue
		}
		if len(verbs) > 0 && !contains(verbs, ev.Verb) {
			continue
		}
		seen[ev.AuditID] = true
		out = append(out, ev)
	}
	require.NoError(e.T, sc.Err())
	return out
}

const metricsGroup = "metrics.k8s.io"

func matchesResource(want, resource, group string) bool {
	if name, ok := strings.CutSuffix(want, "."+metricsGroup); ok {
		return resource == name && group == metricsGroup
	}
	return resource == want && group != metricsGroup
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Namespace creates a namespace and returns its name: name itself on a control plane of the
// test's own, name-<n> on a Shared one (deleted at the test's end).
func (e *Env) Namespace(name string, labels map[string]string) string {
	e.T.Helper()
	name = e.uniqueNamespace(name)
	_, err := e.Kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	require.NoError(e.T, err)
	if e.shared != nil {
		e.namespaces = append(e.namespaces, name)
	}
	return name
}

// CreatePods creates n Running, Ready pods of Deployment deploy in ns, as its ReplicaSet would,
// on a bare control plane: for tests whose subject is the pod creation itself (the webhook under
// load, the pod store's sync). Tests of what autoscaling does run real Deployments instead.
func (e *Env) CreatePods(ns, deploy string, n int) []*corev1.Pod {
	e.T.Helper()
	const hash = "7c9d8f6b5"
	pods := make([]*corev1.Pod, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := e.CreatePod(ns, fmt.Sprintf("%s-%s-%05d", deploy, hash, i), map[string]string{"app": deploy, "pod-template-hash": hash},
				metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: deploy + "-" + hash, UID: types.UID("rs-" + deploy), Controller: Ptr(true)})
			pods[i] = p
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(e.T, err)
	}
	return pods
}

func (e *Env) CreatePod(ns, name string, labels map[string]string, owner metav1.OwnerReference) (*corev1.Pod, error) {
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, OwnerReferences: []metav1.OwnerReference{owner},
			Annotations: map[string]string{"example.com/unrelated": "dropped", v1alpha2.RecommendationIDAnnotation: "r1"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.example/app:1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			}},
			{Name: "sidecar", Image: "registry.example/sidecar:1"},
		}},
	}
	created, err := e.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	// On a cluster with a scheduler, the pod may be bound between the create and the status
	// write: write the status on the latest version.
	var out *corev1.Pod
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		created.Status.Phase = corev1.PodRunning
		created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		var err error
		if out, err = e.Kube.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); apierrors.IsConflict(err) {
			if latest, gerr := e.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); gerr == nil {
				created = latest
			}
		}
		return err
	})
	return out, err
}

func (e *Env) CreateDPA(ns, name, target string) {
	e.T.Helper()
	_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Create(context.Background(), DPA(ns, name, target), metav1.CreateOptions{})
	require.NoError(e.T, err)
}

// DPA is a minimal valid DatadogPodAutoscaler for Deployment target.
func DPA(ns, name, target string) *unstructured.Unstructured { return fxutiltest.DPA(ns, name, target) }

func (e *Env) CreateProfile(name string) {
	e.T.Helper()
	e.CreateProfileWith(name, map[string]any{
		"objectives": []any{map[string]any{
			"type":        "PodResource",
			"podResource": map[string]any{"name": "memory", "value": map[string]any{"type": "Utilization", "utilization": int64(80)}},
		}},
	})
}

// CreateProfileWith creates the cluster profile name with a template (deleted at the test's
// end on a Shared control plane).
func (e *Env) CreateProfileWith(name string, template map[string]any) {
	e.T.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "datadoghq.com/v1alpha2",
		"kind":       "DatadogPodAutoscalerClusterProfile",
		"metadata":   map[string]any{"name": name},
		"spec":       map[string]any{"template": template},
	}}
	_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource).Create(context.Background(), obj, metav1.CreateOptions{})
	require.NoError(e.T, err)
	if e.shared != nil {
		e.profiles = append(e.profiles, name)
	}
}

// Deployment is a valid Deployment named name (1 replica); on a cluster with Nodes the
// controllers run it, on a bare one nothing does.
func Deployment(ns, name string, labels map[string]string) *appsv1.Deployment {
	sel, tmpl := podTemplate(name)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       appsv1.DeploymentSpec{Selector: sel, Template: tmpl},
	}
}

// StatefulSet is a valid StatefulSet named name, run as a Deployment is.
func StatefulSet(ns, name string, labels map[string]string) *appsv1.StatefulSet {
	sel, tmpl := podTemplate(name)
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       appsv1.StatefulSetSpec{Selector: sel, Template: tmpl},
	}
}

func podTemplate(app string) (*metav1.LabelSelector, corev1.PodTemplateSpec) {
	labels := map[string]string{"app": app}
	return &metav1.LabelSelector{MatchLabels: labels}, corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}
}

func Ptr[T any](v T) *T { return &v }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ServingCert is a fresh CA and a serving certificate for 127.0.0.1 (and dnsNames) it
// signed, PEM-encoded.
func ServingCert(dnsNames ...string) (caPEM, certPEM, keyPEM []byte, err error) {
	return testpki.ServingCert(dnsNames...)
}

// WriteServingCert writes a fresh ServingCert into dir as ca.crt, tls.crt and tls.key (the
// files mode's layout) and returns the CA.
func WriteServingCert(t testing.TB, dir string) []byte {
	t.Helper()
	caPEM, certPEM, keyPEM, err := ServingCert()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), caPEM, 0o600))
	return caPEM
}

// MustQuantity parses a resource quantity.
func MustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
