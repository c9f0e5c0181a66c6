// Package integration runs the lazyscale agent in-process against a real etcd and
// kube-apiserver (test/controlplane) and checks what it did from the apiserver's audit log.
package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale"
	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/core/version"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/test/controlplane"
)

const waitFor = 60 * time.Second

type env struct {
	t    *testing.T
	cp   *controlplane.ControlPlane
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

// newEnv starts a fresh control plane for one test, with the CRDs unless withoutCRDs.
func newEnv(t *testing.T, withCRDs bool) *env {
	t.Helper()
	ctx := context.Background()
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(cp.Stop)
	e := &env{t: t, cp: cp}
	e.kube, err = kubernetes.NewForConfig(cp.Config)
	require.NoError(t, err)
	e.dyn, err = dynamic.NewForConfig(cp.Config)
	require.NoError(t, err)
	if withCRDs {
		e.installCRDs()
	}
	return e
}

func (e *env) installCRDs() {
	dir, err := controlplane.CRDDir()
	require.NoError(e.t, err)
	require.NoError(e.t, controlplane.InstallCRDs(context.Background(), e.cp.Config, dir))
}

// agent is an in-process lazyscale built from the same bundle as the binary.
type agent struct {
	t      *testing.T
	app    *fxtest.App
	gate   gatedef.Component
	wm     wmdef.Component
	status statusdef.Component
}

func (e *env) startAgent(overrides map[string]string) *agent {
	e.t.Helper()
	params := configdef.Params{
		Overrides: map[string]string{
			"kubernetes.kubeconfig": e.cp.Kubeconfig,
			"status.addr":           "127.0.0.1:0",
		},
		Environ: []string{},
	}
	for k, v := range overrides {
		params.Overrides[k] = v
	}
	a := &agent{t: e.t}
	a.app = fxtest.New(e.t,
		fx.Supply(params),
		lazyscale.Bundle(),
		fx.NopLogger,
		fx.Populate(&a.gate, &a.wm, &a.status),
	)
	a.app.RequireStart()
	e.t.Cleanup(a.app.RequireStop)
	return a
}

func (a *agent) get(path string) (int, []byte) {
	a.t.Helper()
	resp, err := http.Get("http://" + a.status.Addr() + path)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	return resp.StatusCode, body
}

// statusDoc is the /status document, decoded generically as a user's script would.
type statusDoc struct {
	Gate struct {
		Open    bool `json:"open"`
		Trigger *struct {
			Kind      string `json:"kind"`
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"trigger"`
		OpenedAt string `json:"opened_at"`
	} `json:"gate"`
	PodCollection struct {
		State string `json:"state"`
		Mode  string `json:"mode"`
		Pods  int    `json:"pods"`
	} `json:"pod_collection"`
}

func (a *agent) statusDoc() statusDoc {
	a.t.Helper()
	code, body := a.get("/status")
	require.Equal(a.t, http.StatusOK, code)
	var d statusDoc
	require.NoError(a.t, json.Unmarshal(body, &d), string(body))
	return d
}

// metric returns the value of one sample line of /metrics, e.g. `lazyscale_autoscaling_gate_open`.
func (a *agent) metric(name string) string {
	a.t.Helper()
	_, body := a.get("/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func (a *agent) waitState(state wmdef.CollectionState) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.True(a.t, a.wm.WaitForCollectionState(ctx, wmdef.KindPod, state),
		"pod collection never reached %s (now %s)", state, a.wm.CollectionState(wmdef.KindPod))
}

func (a *agent) waitGate() {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.True(a.t, a.gate.WaitForEnable(ctx), "gate never opened")
}

// auditEvent is the part of an audit.k8s.io/v1 Event the tests read.
type auditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	UserAgent  string `json:"userAgent"`
	ObjectRef  *struct {
		Resource string `json:"resource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// lazyscaleRequests returns the requests lazyscale made for resource (all if empty), one per
// request, from the apiserver's own audit log.
func (e *env) lazyscaleRequests(resource string, verbs ...string) []auditEvent {
	e.t.Helper()
	f, err := os.Open(e.cp.AuditLog)
	require.NoError(e.t, err)
	defer f.Close()
	seen := map[string]bool{}
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditEvent
		require.NoError(e.t, json.Unmarshal(sc.Bytes(), &ev))
		if !strings.HasPrefix(ev.UserAgent, version.UserAgent()) || seen[ev.AuditID] {
			continue
		}
		if resource != "" && (ev.ObjectRef == nil || ev.ObjectRef.Resource != resource) {
			continue
		}
		if len(verbs) > 0 && !contains(verbs, ev.Verb) {
			continue
		}
		seen[ev.AuditID] = true
		out = append(out, ev)
	}
	require.NoError(e.t, sc.Err())
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (e *env) namespace(name string, labels map[string]string) {
	e.t.Helper()
	_, err := e.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	require.NoError(e.t, err)
}

// createPods creates n Running, Ready pods of Deployment deploy in ns, as its ReplicaSet would.
func (e *env) createPods(ns, deploy string, n int) []*corev1.Pod {
	e.t.Helper()
	const hash = "7c9d8f6b5"
	pods := make([]*corev1.Pod, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := e.createPod(ns, fmt.Sprintf("%s-%s-%05d", deploy, hash, i), map[string]string{"app": deploy, "pod-template-hash": hash},
				metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: deploy + "-" + hash, UID: types.UID("rs-" + deploy), Controller: ptr(true)})
			pods[i] = p
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(e.t, err)
	}
	return pods
}

func (e *env) createPod(ns, name string, labels map[string]string, owner metav1.OwnerReference) (*corev1.Pod, error) {
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
	created, err := e.kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	created.Status.Phase = corev1.PodRunning
	created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	return e.kube.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{})
}

func (e *env) createDPA(ns, name, target string) {
	e.t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "datadoghq.com/v1alpha2",
		"kind":       "DatadogPodAutoscaler",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"targetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
			"objectives": []any{map[string]any{
				"type":        "PodResource",
				"podResource": map[string]any{"name": "cpu", "value": map[string]any{"type": "Utilization", "utilization": int64(70)}},
			}},
		},
	}}
	_, err := e.dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{})
	require.NoError(e.t, err)
}

func (e *env) createProfile(name string) {
	e.t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "datadoghq.com/v1alpha2",
		"kind":       "DatadogPodAutoscalerClusterProfile",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{"template": map[string]any{
			"objectives": []any{map[string]any{
				"type":        "PodResource",
				"podResource": map[string]any{"name": "memory", "value": map[string]any{"type": "Utilization", "utilization": int64(80)}},
			}},
		}},
	}}
	_, err := e.dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource).Create(context.Background(), obj, metav1.CreateOptions{})
	require.NoError(e.t, err)
}

func deployment(ns, name string, labels map[string]string) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
}

func statefulSet(ns, name string, labels map[string]string) *appsv1.StatefulSet {
	sel := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }
