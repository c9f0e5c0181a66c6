// Command bench measures what lazyscale costs a cluster: it starts the local control plane,
// fills it with realistic pods, and runs the real bin/lazyscale binary in each mode one after
// another, reading memory from the agent's own /metrics (after a forced GC) and the requests
// it made from the apiserver's audit log.
//
//	go run ./test/bench -pods 5000 -modes disabled,dormant,active,active-list
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// Result is one mode's measurements.
type Result struct {
	Mode             string  `json:"mode"`
	Pods             int     `json:"pods"`
	HeapAllocBytes   float64 `json:"heap_alloc_bytes"`
	HeapInuseBytes   float64 `json:"heap_inuse_bytes"`
	RSSBytes         float64 `json:"rss_bytes"`
	PeakRSSBytes     float64 `json:"peak_rss_bytes"`
	PodLists         int     `json:"pod_lists"`
	PodWatches       int     `json:"pod_watches"`
	EntitiesInStore  int     `json:"entities_in_store"`
	ActivationMillis float64 `json:"activation_ms,omitempty"`
	// PodCreate is the latency of creating pods of the DPA's target through the apiserver while
	// this mode runs: without any webhook (disabled) or with lazyscale's webhook patching (active).
	PodCreate *Latency `json:"pod_create,omitempty"`
	// PodsPatched counts the measured pods that came back with the autoscaler-id annotation.
	PodsPatched int `json:"pods_patched,omitempty"`
	// TLSHandshakes is how many TLS handshakes the agent's webhook server served in the mode.
	TLSHandshakes int `json:"tls_handshakes,omitempty"`
	// WebhookHandlerMeanMs is the agent's own mean time per review (its duration histogram).
	WebhookHandlerMeanMs float64 `json:"webhook_handler_mean_ms,omitempty"`
	// WebhookCalls is how many reviews the agent's webhook answered in the mode.
	WebhookCalls int `json:"webhook_calls"`
	// PatcherMillis is the time from DPA creation to /status webhook.patcher_installed
	// (polled every 10 ms).
	PatcherMillis float64 `json:"patcher_ms,omitempty"`
}

// Latency summarises a series of request latencies.
type Latency struct {
	Count int     `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	Mean  float64 `json:"mean_ms"`
}

// Report is the whole run.
type Report struct {
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	CPUs      int    `json:"cpus"`
	Pods      int    `json:"pods"`
	// EtcdRSSBytes and APIServerRSSBytes are the control plane's own resident memory once the
	// pods exist (before the modes run), for sizing a test cluster.
	EtcdRSSBytes      float64 `json:"etcd_rss_bytes"`
	APIServerRSSBytes float64 `json:"apiserver_rss_bytes"`
	// PlainListMs is a paginated LIST (500 per page, protobuf) of all pods by a plain client,
	// the yardstick for DPA creation -> pods synced.
	PlainListMs float64  `json:"plain_list_ms"`
	Results     []Result `json:"results"`
}

var modes = map[string][]string{
	"disabled":    {"LAZYSCALE_AUTOSCALING_WORKLOAD_ENABLED=false"},
	"dormant":     nil,
	"active":      nil, // defaults: the initial sync streams (watch_list=true)
	"active-list": {"LAZYSCALE_WORKLOADMETA_PODS_WATCH_LIST=false"},
	"eager":       {"LAZYSCALE_WORKLOADMETA_PODS_COLLECTION=eager"},
	// webhook-skip: the webhook registered before any DPA (register=always): the apiserver
	// calls it for every pod and it answers on the gate-closed fast path. Run it before active.
	"webhook-skip": {"LAZYSCALE_ADMISSION_REGISTER=always"},
	// floor-call, floor-patch: not lazyscale but a constant-answer webhook in the bench (floor.go).
	"floor-call":  nil,
	"floor-patch": nil,
	// reference: not lazyscale but test/bench/reference, a plain SharedInformer on full pods.
	"reference": nil,
}

var profileDir = flag.String("profile-dir", "", "write a CPU profile of the agent during the active pod-create run here")

// Run is a whole bench run: one Report per size, smallest first.
type Run struct {
	Sizes []Report `json:"sizes"`
}

func main() {
	podList := flag.String("pods", "5000", "pod counts to measure, comma-separated, e.g. 1000,5000,20000")
	plots := flag.String("plots", "", "write PNG plots into this directory")
	modeList := flag.String("modes", "disabled,dormant,webhook-skip,active,active-list,eager,reference", "modes to run, in order (webhook-skip before active: it needs no DPA yet)")
	agent := flag.String("agent", "bin/lazyscale", "lazyscale binary")
	out := flag.String("out", "", "write the JSON report here")
	settle := flag.Duration("settle", 5*time.Second, "time the agent runs before memory is read")
	render := flag.String("render", "", "only render the JSON report -in into this markdown file's generated parts (docs/benchmarks.md), and -plots from it, then exit")
	in := flag.String("in", "docs/bench/results.json", "the JSON report -render reads")
	flag.Parse()
	if *render != "" {
		reports, err := readReports(*in)
		if err == nil {
			err = renderDoc(*render, reports)
		}
		if err == nil && *plots != "" {
			err = writePlots(Run{Sizes: reports}, *plots)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	var sizes []int
	for _, f := range strings.Split(*podList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -pods: %q is not a positive count\n", f)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	sort.Ints(sizes)
	if err := run(sizes, strings.Split(*modeList, ","), *agent, *out, *plots, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(sizes []int, modeNames []string, agent, out, plots string, settle time.Duration) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "lazyscale-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: dir, InstallCRDs: true})
	if err != nil {
		return err
	}
	defer cp.Stop()
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	// lazyscale's own namespace, as a deployment has it: the leader Lease and the webhook
	// certificate Secret live there.
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lazyscale"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	reference := filepath.Join(dir, "reference")
	if out, err := exec.Command("go", "build", "-o", reference, "./test/bench/reference").CombinedOutput(); err != nil {
		return fmt.Errorf("build the reference informer: %w: %s", err, out)
	}
	var all Run
	created := 0
	for _, n := range sizes {
		began := time.Now()
		if err := createPods(ctx, kube, created, n); err != nil {
			return err
		}
		created = n
		fmt.Fprintf(os.Stderr, "== %d pods (created in %s)\n", n, time.Since(began).Round(time.Millisecond))
		report, err := runSize(ctx, cp, kube, dyn, n, modeNames, agent, reference, settle)
		if err != nil {
			return err
		}
		all.Sizes = append(all.Sizes, report)
	}
	enc, _ := json.MarshalIndent(all, "", "  ")
	if out != "" {
		if err := os.WriteFile(out, append(enc, '\n'), 0o644); err != nil {
			return err
		}
	}
	if plots != "" {
		if err := writePlots(all, plots); err != nil {
			return err
		}
	}
	fmt.Println(string(enc))
	return nil
}

// runSize measures every mode at the current pod count, then removes what the modes added to
// the cluster (the DPA, the webhook configuration) so that the next size starts dormant.
func runSize(ctx context.Context, cp *controlplane.ControlPlane, kube kubernetes.Interface, dyn dynamic.Interface, n int, modeNames []string, agent, reference string, settle time.Duration) (Report, error) {
	var err error
	report := Report{Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Pods: n}
	if report.PlainListMs, err = plainList(ctx, cp); err != nil {
		return report, err
	}
	etcdPid, apiPid := cp.Pids()
	if report.EtcdRSSBytes, err = vmRSS(etcdPid); err != nil {
		return report, err
	}
	if report.APIServerRSSBytes, err = vmRSS(apiPid); err != nil {
		return report, err
	}
	fmt.Fprintf(os.Stderr, "control plane RSS: etcd %.0f MiB, kube-apiserver %.0f MiB\n", report.EtcdRSSBytes/(1<<20), report.APIServerRSSBytes/(1<<20))
	fmt.Fprintf(os.Stderr, "plain paginated LIST of all pods: %.0f ms\n", report.PlainListMs)
	dpaCreated := false
	for _, m := range modeNames {
		env, ok := modes[m]
		if !ok {
			return report, fmt.Errorf("unknown mode %q", m)
		}
		bin := agent
		if m == "reference" {
			bin = reference
		}
		var r Result
		if strings.HasPrefix(m, "floor-") {
			r, err = measureFloor(ctx, cp, kube, m, n)
		} else {
			r, err = measure(ctx, cp, dyn, bin, m, env, n, settle, &dpaCreated)
		}
		if err != nil {
			return report, fmt.Errorf("mode %s: %w", m, err)
		}
		report.Results = append(report.Results, r)
		if !strings.HasPrefix(m, "floor-") {
			fmt.Fprintf(os.Stderr, "%-17s heap_alloc=%6.2f MiB heap_inuse=%6.2f MiB rss=%6.1f MiB peak_rss=%6.1f MiB pod LIST=%d WATCH=%d pods=%d activation=%.0f ms\n",
				m, r.HeapAllocBytes/(1<<20), r.HeapInuseBytes/(1<<20), r.RSSBytes/(1<<20), r.PeakRSSBytes/(1<<20), r.PodLists, r.PodWatches, r.EntitiesInStore, r.ActivationMillis)
		}
		if r.PodCreate != nil {
			fmt.Fprintf(os.Stderr, "%-17s pod create p50=%.2f ms p90=%.2f ms p99=%.2f ms mean=%.2f ms patched=%d/%d webhook_calls=%d tls_handshakes=%d handler_mean=%.3f ms patcher=%.0f ms\n",
				m, r.PodCreate.P50Ms, r.PodCreate.P90Ms, r.PodCreate.P99Ms, r.PodCreate.Mean, r.PodsPatched, r.PodCreate.Count, r.WebhookCalls, r.TLSHandshakes, r.WebhookHandlerMeanMs, r.PatcherMillis)
		}
	}
	if dpaCreated {
		if err := dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("team-0").Delete(ctx, "svc-000", metav1.DeleteOptions{}); err != nil {
			return report, err
		}
	}
	err = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "lazyscale-webhook", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return report, err
	}
	return report, nil
}

func measure(ctx context.Context, cp *controlplane.ControlPlane, dyn dynamic.Interface, agent, mode string, env []string, n int, settle time.Duration, dpaCreated *bool) (Result, error) {
	r := Result{Mode: mode, Pods: n}
	auditStart, err := fileSize(cp.AuditLog)
	if err != nil {
		return r, err
	}
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	cmd := exec.Command(agent, "--kubeconfig", cp.Kubeconfig, "--status-addr", addr, "--log-level", "warn")
	userAgent := "lazyscale/"
	if mode == "reference" {
		cmd = exec.Command(agent, "-kubeconfig", cp.Kubeconfig, "-addr", addr)
		userAgent = "reference-informer/"
	}
	started := time.Now()
	port, err := freeAddr()
	if err != nil {
		return r, err
	}
	cmd.Env = append(append(os.Environ(), "LAZYSCALE_STATUS_PPROF=true", "LAZYSCALE_ADMISSION_BIND_ADDRESS=127.0.0.1",
		"LAZYSCALE_ADMISSION_PORT="+port[strings.LastIndex(port, ":")+1:], "LAZYSCALE_ADMISSION_URL=https://"+port), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	ready := "/readyz"
	if mode == "reference" {
		ready = "/synced"
	}
	if err := waitUntil(5*time.Minute, func() bool { code, _ := get(addr, ready); return code == http.StatusOK }); err != nil {
		return r, fmt.Errorf("not ready: %w", err)
	}
	if mode == "reference" || mode == "eager" {
		r.ActivationMillis = float64(time.Since(started).Microseconds()) / 1000 // process start -> synced
	}

	if strings.HasPrefix(mode, "active") {
		start := time.Now()
		if !*dpaCreated {
			if err := createDPA(ctx, dyn); err != nil {
				return r, err
			}
			*dpaCreated = true
		}
		var syncedAt time.Time
		if err := waitUntil(5*time.Minute, func() bool {
			_, body := get(addr, "/status")
			var st statusdef.Document
			if json.Unmarshal([]byte(body), &st) != nil || st.PodCollection == nil {
				return false
			}
			syncedAt = st.PodCollection.SyncedAt
			return !syncedAt.IsZero()
		}); err != nil {
			return r, fmt.Errorf("pod collection never synced: %w", err)
		}
		// The agent's own timestamp (same machine clock), not the poll: no polling granularity.
		r.ActivationMillis = float64(syncedAt.Sub(start).Microseconds()) / 1000
		if err := waitUntil(5*time.Minute, func() bool {
			_, body := get(addr, "/status")
			var st statusdef.Document
			return json.Unmarshal([]byte(body), &st) == nil && st.Webhook != nil && st.Webhook.PatcherInstalled
		}); err != nil {
			return r, fmt.Errorf("patcher never installed: %w", err)
		}
		r.PatcherMillis = float64(time.Since(start).Microseconds()) / 1000
	}
	time.Sleep(settle) // a measurement window, not synchronisation
	if code, _ := get(addr, "/debug/pprof/heap?gc=1"); code != http.StatusOK {
		return r, fmt.Errorf("forced GC via pprof: HTTP %d", code)
	}
	_, metrics := get(addr, "/metrics")
	r.HeapAllocBytes = metric(metrics, "go_memstats_heap_alloc_bytes")
	r.HeapInuseBytes = metric(metrics, "go_memstats_heap_inuse_bytes")
	r.RSSBytes = metric(metrics, "process_resident_memory_bytes")
	r.EntitiesInStore = int(metric(metrics, `lazyscale_workloadmeta_entities{kind="pod"}`) + metric(metrics, "reference_pods"))
	r.PeakRSSBytes, err = vmHWM(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	r.PodLists, r.PodWatches, err = podRequests(cp.AuditLog, auditStart, userAgent)
	if err != nil {
		return r, err
	}
	if mode == "disabled" || mode == "dormant" || mode == "active" || mode == "webhook-skip" {
		if mode != "disabled" && mode != "dormant" {
			// The apiserver picks up the new webhook configuration asynchronously.
			if err := waitUntil(time.Minute, func() bool { _, body := get(addr, "/status"); return strings.Contains(body, `"autoscaling": true`) }); err != nil {
				return r, fmt.Errorf("webhook never registered: %w", err)
			}
			time.Sleep(2 * time.Second)
		}
		var profiled chan struct{}
		if *profileDir != "" && mode == "active" {
			profiled = make(chan struct{})
			go func() {
				defer close(profiled)
				_, prof := get(addr, "/debug/pprof/profile?seconds=2")
				_ = os.WriteFile(filepath.Join(*profileDir, "agent-webhook-cpu.pprof"), []byte(prof), 0o644)
			}()
		}
		r.PodCreate, r.PodsPatched, err = podCreateLatency(ctx, cp, fmt.Sprintf("%s-%d", mode, n), 300)
		if profiled != nil {
			<-profiled
		}
		_, metrics := get(addr, "/metrics")
		r.TLSHandshakes = int(metric(metrics, "lazyscale_admission_tls_handshakes_total"))
		r.WebhookCalls = webhookCalls(metrics)
		if n := metric(metrics, `lazyscale_admission_webhook_duration_seconds_count{webhook="autoscaling"}`); n > 0 {
			r.WebhookHandlerMeanMs = metric(metrics, `lazyscale_admission_webhook_duration_seconds_sum{webhook="autoscaling"}`) / n * 1000
		}
	}
	return r, err
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
		tmpl := benchPod(0, namespaces)
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "svc-000", Namespace: "team-0"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "svc-000"}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "svc-000"}}, Spec: tmpl.Spec}},
		}
		d.Spec.Template.Spec.NodeName = ""
		if _, err := kube.AppsV1().Deployments("team-0").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				p := benchPod(i, namespaces)
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

// benchPod is a pod as a Deployment's ReplicaSet creates it: 3 containers with env and
// resources, a dozen labels, annotations.
func benchPod(i, namespaces int) *corev1.Pod {
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

func createDPA(ctx context.Context, dyn dynamic.Interface) error {
	_, err := dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("team-0").Create(ctx, testenv.DPA("team-0", "svc-000", "svc-000"), metav1.CreateOptions{})
	return err
}

func podRequests(auditLog string, offset int64, userAgent string) (lists, watches int, err error) {
	f, err := os.Open(auditLog)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, 0, err
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			AuditID   string `json:"auditID"`
			Verb      string `json:"verb"`
			UserAgent string `json:"userAgent"`
			ObjectRef *struct {
				Resource string `json:"resource"`
				APIGroup string `json:"apiGroup"`
			} `json:"objectRef"`
		}
		// Core pods only: the local recommender's PodMetrics lists are "pods" of metrics.k8s.io.
		if json.Unmarshal(sc.Bytes(), &ev) != nil || seen[ev.AuditID] || !strings.HasPrefix(ev.UserAgent, userAgent) ||
			ev.ObjectRef == nil || ev.ObjectRef.Resource != "pods" || ev.ObjectRef.APIGroup != "" {
			continue
		}
		seen[ev.AuditID] = true
		switch ev.Verb {
		case "list":
			lists++
		case "watch":
			watches++
		}
	}
	return lists, watches, sc.Err()
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
