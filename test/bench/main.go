// Command bench measures what lazyscale costs a cluster: it starts the local control plane,
// fills it with realistic pods, and runs the real bin/lazyscale binary in each mode one after
// another, reading memory from the agent's own /metrics (after a forced GC) and the requests
// it made from the apiserver's audit log.
//
//	go run ./test/bench -pods 5000 -modes disabled,dormant,active,active-list
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/test/controlplane"
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
	PlainListMs float64 `json:"plain_list_ms"`
	// Workloads is how the pods were made: "pods" (created directly by the bench, as a
	// ReplicaSet controller would) or "deployments" (real Deployments on kwok's nodes).
	Workloads string `json:"workloads,omitempty"`
	// PodShape is the pods' shape: "bench" (the default) or "modest".
	PodShape string `json:"pod_shape,omitempty"`
	// PodsRunningMs (deployments) is the time from the Deployments' creation or scaling to
	// every pod Running.
	PodsRunningMs float64  `json:"pods_running_ms,omitempty"`
	Results       []Result `json:"results"`
}

// The modes that measure the webhook do so cluster-wide (admission.scope cluster): every pod
// created goes through it, as before the entry was scoped to the autoscaled namespaces. The
// active modes that measure the cost of holding pods collect the whole cluster
// (workloadmeta.pods.cluster_wide_above 0), as before the collection was scoped; active-scoped
// is the defaults: only the DPA's namespace.
var modes = map[string][]string{
	"disabled":      {"LAZYSCALE_AUTOSCALING_WORKLOAD_ENABLED=false"},
	"dormant":       nil,
	"active":        {"LAZYSCALE_ADMISSION_SCOPE=cluster", "LAZYSCALE_WORKLOADMETA_PODS_CLUSTER_WIDE_ABOVE=0"}, // the initial sync streams (watch_list=true)
	"active-list":   {"LAZYSCALE_WORKLOADMETA_PODS_WATCH_LIST=false", "LAZYSCALE_ADMISSION_SCOPE=cluster", "LAZYSCALE_WORKLOADMETA_PODS_CLUSTER_WIDE_ABOVE=0"},
	"active-scoped": nil,
	"eager":         {"LAZYSCALE_WORKLOADMETA_PODS_COLLECTION=eager", "LAZYSCALE_ADMISSION_SCOPE=cluster"},
	// webhook-skip: the webhook registered before any DPA (register=always): the apiserver
	// calls it for every pod and it answers on the gate-closed fast path. Run it before active.
	"webhook-skip": {"LAZYSCALE_ADMISSION_REGISTER=always", "LAZYSCALE_ADMISSION_SCOPE=cluster"},
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
	modeList := flag.String("modes", "disabled,dormant,webhook-skip,active,active-list,active-scoped,eager,reference", "modes to run, in order (webhook-skip before active: it needs no DPA yet)")
	agent := flag.String("agent", "bin/lazyscale", "lazyscale binary")
	out := flag.String("out", "", "write the JSON report here")
	settle := flag.Duration("settle", 5*time.Second, "time the agent runs before memory is read")
	render := flag.String("render", "", "only render the JSON report -in into this markdown file's generated parts (docs/benchmarks.md), and -plots from it, then exit")
	in := flag.String("in", "docs/bench/results.json", "the JSON report -render reads")
	inDeployments := flag.String("in-deployments", "docs/bench/results-deployments.json", "the JSON report of a -workloads deployments run -render reads")
	scope := flag.Bool("scope", false, "the scope run instead of the modes: -pods pods over 100 namespaces, one DPA, then none (issue 15)")
	inScope := flag.String("in-scope", "docs/bench/results-scope.json", "the JSON report of a -scope run -render reads")
	takeoverRun := flag.Bool("takeover", false, "the takeover run instead of the modes: -pods pods, a DPA per namespace, the leader killed, with and without pods on followers (issue 15)")
	inTakeover := flag.String("in-takeover", "docs/bench/results-takeover.json", "the JSON report of a -takeover run -render reads")
	flag.IntVar(&scopeNamespaces, "scope-namespaces", scopeNamespaces, "the namespaces the -scope and -takeover runs spread their pods over")
	agentEnvList := flag.String("agent-env", "", "KEY=VALUE,... added to the environment of the agents of the -scope and -takeover runs")
	conditions := flag.Bool("conditions", false, "the match-condition run instead of the modes: the autoscaling entry's variants, interleaved (issue 15)")
	inConditions := flag.String("in-conditions", "docs/bench/results-conditions.json", "the JSON report of a -conditions run -render reads")
	inSoak := flag.String("in-soak", "docs/bench/results-soak.json", "the JSON report of a -soak run whose plots -render draws again (with -plots)")
	inModest := flag.String("in-modest", "docs/bench/results-modest.json", "the JSON report of a -pod-shape modest run -render reads")
	flag.StringVar(&podShape, "pod-shape", podShape, `the pods' shape: "bench" (3 containers, 8 labels, 4 annotations) or "modest" (2 containers, 4 labels, 2 annotations)`)
	workloads := flag.String("workloads", "pods", `how the pods are made: "pods" (created by the bench: fast, up to 50,000) or "deployments" (real Deployments on kwok nodes, with the controller-manager and the scheduler)`)
	flag.Parse()
	if *render != "" {
		reports, err := readReports(*in)
		var deployments, modest []Report
		if err == nil {
			if deployments, err = readReports(*inDeployments); errors.Is(err, os.ErrNotExist) {
				err = nil // not measured: the part says so
			}
		}
		if err == nil {
			if modest, err = readReports(*inModest); errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		}
		var scoped *ScopeReport
		if err == nil {
			if scoped, err = readJSON[ScopeReport](*inScope); errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		}
		var conds *ConditionsReport
		if err == nil {
			if conds, err = readJSON[ConditionsReport](*inConditions); errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		}
		var takes *TakeoverReport
		if err == nil {
			if takes, err = readJSON[TakeoverReport](*inTakeover); errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		}
		if err == nil {
			err = renderDoc(*render, reports, deployments, modest, scoped, conds, takes)
		}
		if err == nil && *plots != "" {
			err = writePlots(Run{Sizes: reports}, *plots)
		}
		if err == nil && *plots != "" {
			var soak *SoakReport
			if soak, err = readJSON[SoakReport](*inSoak); err == nil {
				err = soakPlots(*soak, *plots)
			} else if errors.Is(err, os.ErrNotExist) {
				err = nil
			}
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
	if podShape != "bench" && podShape != "modest" {
		fmt.Fprintf(os.Stderr, "bench: -pod-shape: %q is neither bench nor modest\n", podShape)
		os.Exit(2)
	}
	if *workloads != "pods" && *workloads != "deployments" {
		fmt.Fprintf(os.Stderr, "bench: -workloads: %q is neither pods nor deployments\n", *workloads)
		os.Exit(2)
	}
	if *conditions {
		if err := runConditions(*agent, *out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *agentEnvList != "" {
		agentEnv = strings.Split(*agentEnvList, ",")
	}
	if *takeoverRun {
		if err := runTakeover(sizes[len(sizes)-1], *agent, *out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *soakFor > 0 {
		if err := runSoak(sizes[len(sizes)-1], *agent, *out, *plots); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *scope {
		if err := runScope(sizes[len(sizes)-1], *agent, *out, *plots, *settle); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(sizes, strings.Split(*modeList, ","), *agent, *out, *plots, *settle, *workloads); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(sizes []int, modeNames []string, agent, out, plots string, settle time.Duration, workloads string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "lazyscale-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := controlplane.Options{Dir: dir, InstallCRDs: true}
	if workloads == "deployments" {
		opts.Nodes = nodesFor(sizes[len(sizes)-1])
		fmt.Fprintf(os.Stderr, "== a cluster of %d kwok nodes\n", opts.Nodes)
	}
	cp, kube, dyn, err := startCluster(ctx, opts)
	if err != nil {
		return err
	}
	defer cp.Stop()
	reference := filepath.Join(dir, "reference")
	if out, err := exec.Command("go", "build", "-o", reference, "./test/bench/reference").CombinedOutput(); err != nil {
		return fmt.Errorf("build the reference informer: %w: %s", err, out)
	}
	var all Run
	created := 0
	for _, n := range sizes {
		began := time.Now()
		var running time.Duration
		if workloads == "deployments" {
			running, err = scaleDeployments(ctx, kube, n)
		} else {
			err = createPods(ctx, kube, created, n)
		}
		if err != nil {
			return err
		}
		created = n
		fmt.Fprintf(os.Stderr, "== %d pods (%s, made in %s)\n", n, workloads, time.Since(began).Round(time.Millisecond))
		report, err := runSize(ctx, cp, kube, dyn, n, modeNames, agent, reference, settle)
		if err != nil {
			return err
		}
		report.Workloads = workloads
		report.PodShape = podShape
		report.PodsRunningMs = float64(running.Microseconds()) / 1000
		all.Sizes = append(all.Sizes, report)
	}
	return writeReport(all, out, plots, func(dir string) error { return writePlots(all, dir) })
}

// writeReport writes a run's JSON report to out (when set) and stdout, and its plots into
// plots (when set).
func writeReport(report any, out, plots string, plot func(dir string) error) error {
	enc, _ := json.MarshalIndent(report, "", "  ")
	if out != "" {
		if err := os.WriteFile(out, append(enc, '\n'), 0o644); err != nil {
			return err
		}
	}
	if plots != "" {
		if err := plot(plots); err != nil {
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
