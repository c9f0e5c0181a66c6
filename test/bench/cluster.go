package main

// The bench cluster's workload (pods, the DPA) and the readers of what the agent did (audit
// log, /proc, /metrics).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// startCluster starts the local control plane in dir and creates lazyscale's own namespace,
// as a deployment has it (the leader Lease and the webhook certificate Secret live there).
// The caller stops the control plane.
func startCluster(ctx context.Context, opts controlplane.Options) (*controlplane.ControlPlane, kubernetes.Interface, dynamic.Interface, error) {
	cp, err := controlplane.Start(ctx, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err == nil {
		_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lazyscale"}}, metav1.CreateOptions{})
	}
	var dyn dynamic.Interface
	if err == nil {
		dyn, err = dynamic.NewForConfig(cp.Config)
	}
	if err != nil {
		cp.Stop()
		return nil, nil, nil, err
	}
	return cp, kube, dyn, nil
}

// benchCluster starts a control plane with the CRDs in a temporary directory; stop stops it
// and removes the directory.
func benchCluster(ctx context.Context, run string) (*controlplane.ControlPlane, kubernetes.Interface, dynamic.Interface, func(), error) {
	dir, err := os.MkdirTemp("", "lazyscale-bench-"+run+"-")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cp, kube, dyn, err := startCluster(ctx, controlplane.Options{Dir: dir, InstallCRDs: true})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, nil, nil, err
	}
	return cp, kube, dyn, func() { cp.Stop(); _ = os.RemoveAll(dir) }, nil
}

// scopeCluster is benchCluster filled with pods over scopeNamespaces namespaces (createScopePods).
func scopeCluster(ctx context.Context, run string, pods int) (*controlplane.ControlPlane, kubernetes.Interface, dynamic.Interface, func(), error) {
	cp, kube, dyn, stop, err := benchCluster(ctx, run)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	began := time.Now()
	if err := createScopePods(ctx, kube, pods); err != nil {
		stop()
		return nil, nil, nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "== %d pods in %d namespaces (made in %s)\n", pods, scopeNamespaces, time.Since(began).Round(time.Second))
	return cp, kube, dyn, stop, nil
}

// plainList times a paginated LIST of every non-terminal pod, as any client would do it.
func plainList(ctx context.Context, cp *controlplane.ControlPlane) (float64, error) {
	cfg := *cp.Config
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	kube, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	opts := metav1.ListOptions{Limit: 500, FieldSelector: "status.phase!=Succeeded,status.phase!=Failed"}
	for {
		list, err := kube.CoreV1().Pods("").List(ctx, opts)
		if err != nil {
			return 0, err
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			return float64(time.Since(start).Microseconds()) / 1000, nil
		}
	}
}

// podCreateLatency creates n pods of Deployment svc-000 in team-0 (the DPA's target), one at a
// time, and returns the latency distribution.
func podCreateLatency(ctx context.Context, cp *controlplane.ControlPlane, run string, n int) (*Latency, int, error) {
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return nil, 0, err
	}
	lat := make([]float64, 0, n)
	patched := 0
	for i := range n {
		p := benchPod(0, 10)
		p.Name = fmt.Sprintf("latency-%s-%04d", run, i)
		start := time.Now()
		created, err := kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return nil, 0, err
		}
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		if created.Annotations[v1alpha2.AutoscalerIDAnnotation] != "" {
			patched++
		}
	}
	sort.Float64s(lat)
	sum := 0.0
	for _, v := range lat {
		sum += v
	}
	q := func(f float64) float64 { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	return &Latency{Count: n, P50Ms: q(0.5), P90Ms: q(0.9), P99Ms: q(0.99), Mean: sum / float64(n)}, patched, nil
}

// createPods creates pods from..to-1 (and the namespaces when from is 0).
func createPods(ctx context.Context, kube kubernetes.Interface, from, to int) error {
	const namespaces = 10
	for i := range namespaces {
		if from > 0 {
			break
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%d", i)}}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if from == 0 {
		// The DPA's target must exist for the DPA to become active and its pods to be patched.
		if err := createDeployment(ctx, kube, "team-0", "svc-000", 1, benchPod(0, namespaces)); err != nil {
			return err
		}
	}
	return runningPods(ctx, kube, from, to, func(i int) *corev1.Pod { return benchPod(i, namespaces) })
}

// createDeployment creates the Deployment whose pods look like tmpl (no controller makes them
// here: the bench does).
func createDeployment(ctx context.Context, kube kubernetes.Interface, ns, name string, replicas int32, tmpl *corev1.Pod) error {
	labels := map[string]string{"app": tmpl.Labels["app"]}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: tmpl.Spec}},
	}
	d.Spec.Template.Spec.NodeName = ""
	_, err := kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	return err
}

// runningPods creates pods from..to-1 by server-side apply, 16 at a time, each Running and
// Ready as its kubelet would report it.
func runningPods(ctx context.Context, kube kubernetes.Interface, from, to int, pod func(int) *corev1.Pod) error {
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				p := pod(i)
				created, err := applyPod(ctx, kube, p)
				if err == nil {
					created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", HostIP: "10.1.0.1",
						Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}}
					_, err = kube.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{FieldManager: "kubelet"})
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := from; i < to; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// applyPod creates a pod by server-side apply, as the ReplicaSet controller's field manager,
// so the stored pod carries Apply managedFields like pods in clusters managed that way.
func applyPod(ctx context.Context, kube kubernetes.Interface, p *corev1.Pod) (*corev1.Pod, error) {
	p.APIVersion, p.Kind = "v1", "Pod"
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	force := true
	return kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: "kube-controller-manager", Force: &force})
}

// podShape is how the bench's pods look: "bench" (benchPod) or "modest" (modestPod).
var podShape = "bench"

// benchPod is a pod as a Deployment's ReplicaSet creates it: 3 containers with env and
// resources, 8 labels, 4 annotations (or a modest one, with -pod-shape modest).
func benchPod(i, namespaces int) *corev1.Pod {
	if podShape == "modest" {
		return modestPod(i, namespaces)
	}
	deploy := fmt.Sprintf("svc-%03d", i%200)
	hash := fmt.Sprintf("%09x", i%200*7919)
	t := true
	env := make([]corev1.EnvVar, 10)
	for j := range env {
		env[j] = corev1.EnvVar{Name: fmt.Sprintf("SETTING_%02d", j), Value: fmt.Sprintf("value-%d-%d", i%200, j)}
	}
	c := func(name string, port int32, cpu, mem string) corev1.Container {
		return corev1.Container{Name: name, Image: "registry.example/" + name + ":1.2.3", Env: env,
			Ports: []corev1.ContainerPort{{ContainerPort: port, Name: "p" + strconv.Itoa(int(port))}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)},
			}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s-%s-%06d", deploy, hash, i),
			Namespace: fmt.Sprintf("team-%d", i%namespaces),
			Labels: map[string]string{"app": deploy, "pod-template-hash": hash, "team": "payments", "version": "v2.14.1",
				"app.kubernetes.io/name": deploy, "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/managed-by": "helm", "tier": "backend"},
			Annotations: map[string]string{"checksum/config": "4f1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a4938271",
				"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: deploy + "-" + hash,
				UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i%200)), Controller: &t, BlockOwnerDeletion: &t}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{c("app", 8080, "250m", "512Mi"), c("proxy", 15001, "100m", "128Mi"), c("log-shipper", 2020, "50m", "64Mi")},
			NodeName:   fmt.Sprintf("node-%03d", i%300),
		},
	}
}

// modestPod is a smaller pod of the same Deployments: 2 containers with a dozen env vars,
// 4 labels, 2 annotations.
func modestPod(i, namespaces int) *corev1.Pod {
	deploy := fmt.Sprintf("svc-%03d", i%200)
	hash := fmt.Sprintf("%09x", i%200*7919)
	t := true
	env := make([]corev1.EnvVar, 12)
	for j := range env {
		env[j] = corev1.EnvVar{Name: fmt.Sprintf("SETTING_%02d", j), Value: fmt.Sprintf("value-%d", j)}
	}
	c := func(name, cpu, mem string) corev1.Container {
		return corev1.Container{Name: name, Image: "registry.example/" + name + ":1.2.3", Env: env,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)},
			}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s-%s-%06d", deploy, hash, i),
			Namespace:   fmt.Sprintf("team-%d", i%namespaces),
			Labels:      map[string]string{"app": deploy, "pod-template-hash": hash, "team": "payments", "version": "v1.8.0"},
			Annotations: map[string]string{"checksum/config": "9a8b7c6d5e4f30211203f4e5d6c7b8a9", "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: deploy + "-" + hash,
				UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i%200)), Controller: &t, BlockOwnerDeletion: &t}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{c("app", "200m", "256Mi"), c("sidecar", "50m", "64Mi")},
			NodeName:   fmt.Sprintf("node-%03d", i%300),
		},
	}
}

func createDPA(ctx context.Context, dyn dynamic.Interface) error {
	_, err := dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("team-0").Create(ctx, testenv.DPA("team-0", "svc-000", "svc-000"), metav1.CreateOptions{})
	return err
}

// auditEvent is what the bench reads of an audit log entry.
type auditEvent struct {
	AuditID   string `json:"auditID"`
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
}

// eachRequest calls fn once per request (an audit ID has one entry per stage) from offset on
// in the audit log, for the requests on an object whose user agent starts with userAgent.
func eachRequest(auditLog string, offset int64, userAgent string, fn func(auditEvent)) error {
	f, err := os.Open(auditLog)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditEvent
		if json.Unmarshal(sc.Bytes(), &ev) != nil || seen[ev.AuditID] || !strings.HasPrefix(ev.UserAgent, userAgent) || ev.ObjectRef == nil {
			continue
		}
		seen[ev.AuditID] = true
		fn(ev)
	}
	return sc.Err()
}

// requestsBy counts the requests from offset on in the audit log whose user agent starts with
// userAgent, by "verb resource[/subresource]".
func requestsBy(auditLog string, offset int64, userAgent string) (map[string]int, error) {
	out := map[string]int{}
	err := eachRequest(auditLog, offset, userAgent, func(ev auditEvent) {
		key := ev.Verb + " " + ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			key += "/" + ev.ObjectRef.Subresource
		}
		out[key]++
	})
	return out, err
}

// podRequests counts the LIST and WATCH requests on core pods from offset on in the audit log
// whose user agent starts with userAgent.
func podRequests(auditLog string, offset int64, userAgent string) (lists, watches int, err error) {
	err = eachRequest(auditLog, offset, userAgent, func(ev auditEvent) {
		// Core pods only: the local recommender's PodMetrics lists are "pods" of metrics.k8s.io.
		if ev.ObjectRef.Resource != "pods" || ev.ObjectRef.APIGroup != "" {
			return
		}
		switch ev.Verb {
		case "list":
			lists++
		case "watch":
			watches++
		}
	})
	return lists, watches, err
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// vmHWM is a process's peak resident memory, from /proc.
func vmHWM(pid int) (float64, error) { return procStatus(pid, "VmHWM:") }

// vmRSS is a process's current resident memory, from /proc.
func vmRSS(pid int) (float64, error) { return procStatus(pid, "VmRSS:") }

func procStatus(pid int, field string) (float64, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

// webhookCalls sums lazyscale_admission_webhook_requests_total over its labels.
func webhookCalls(text string) int {
	n := 0.0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "lazyscale_admission_webhook_requests_total{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += v
		}
	}
	return int(n)
}

func metric(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

func get(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitUntil(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
