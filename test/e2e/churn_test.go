package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// churnShape is the DPA churn case's size: `make faults` runs the (1,000 DPAs over 5
// minutes, FAULTS_LOAD=full); `make test` a smaller one.
func churnShape() (dpas int, over time.Duration) {
	if loadFull() {
		return 1000, 5 * time.Minute
	}
	return 150, time.Minute
}

// sizes reads GET /debug/autoscaling (status.pprof on).
func sizes(addr string) (map[string]int, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/debug/autoscaling")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc struct{ Sizes map[string]int }
	err = json.NewDecoder(resp.Body).Decode(&doc)
	return doc.Sizes, err
}

// heapAfterGC forces two collections (pprof's heap profile with gc=1: what sync.Pools held in
// the first goes with the second), saves the profile into file, and reads the live heap and the
// goroutines from /metrics.
func heapAfterGC(t *testing.T, addr, file string) (heap, goroutines float64) {
	t.Helper()
	for range 2 {
		resp, err := http.Get("http://" + addr + "/debug/pprof/heap?gc=1")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		prof, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file, prof, 0o644))
	}
	heap, err := strconv.ParseFloat(metricValue(addr, "go_memstats_heap_alloc_bytes"), 64)
	require.NoError(t, err)
	goroutines, err = strconv.ParseFloat(metricValue(addr, "go_goroutines"), 64)
	require.NoError(t, err)
	return heap, goroutines
}

// DPA churn: DPAs created, updated (a new recommendation: a rollout) and deleted, each living a
// while, against one agent. Every DPA has a status before it is deleted; afterwards the
// agent's entries per DPA are gone, its goroutines back to what they were and its heap back
// within 1 MiB. The DPA queue's depth and latency are reported.
func TestFaultDPAChurn(t *testing.T) {
	n, over := churnShape()
	bin := buildBinary(t)
	e := testenv.NewEnvWith(t, controlplane.Options{InstallCRDs: true})
	ns := e.Namespace("shop", nil)
	ctx := context.Background()
	dpas := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns)

	// Targets with no replicas: a rollout is a template change, no pods.
	names := make(chan string)
	var created sync.WaitGroup
	for range 16 {
		created.Go(func() {
			for name := range names {
				d := testenv.Deployment(ns, name, nil)
				d.Spec.Replicas = testenv.Ptr(int32(0))
				_, err := e.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
				assert.NoError(t, err)
			}
		})
	}
	for i := range n {
		names <- fmt.Sprintf("w-%04d", i)
	}
	names <- "w-9999" // the anchor's
	close(names)
	created.Wait()
	resources := func(cpu string) map[string]string {
		return map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "` + cpu + `"}}]`}
	}
	create := func(name string) error {
		dpa := testenv.DPA(ns, name, "w-"+name[len(name)-4:])
		dpa.SetAnnotations(resources("100m"))
		if err := unstructured.SetNestedField(dpa.Object, "TriggerRollout", "spec", "applyPolicy", "update", "strategy"); err != nil {
			return err
		}
		_, err := dpas.Create(ctx, dpa, metav1.CreateOptions{})
		return err
	}

	_, addr, logs := oneAgent(t, bin, e, "agent-a", "LAZYSCALE_STATUS_PPROF=true")
	// The anchor keeps the gate open: the baseline is the running stack with one DPA.
	require.NoError(t, create("anchor-9999"))
	hasStatus := func(name string) bool {
		u, err := dpas.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		return len(conds) > 0
	}
	require.Eventually(t, func() bool { return hasStatus("anchor-9999") }, testenv.WaitFor, 100*time.Millisecond, "logs:\n%s", logs)
	settled := func() map[string]int {
		ok := func(s map[string]int, err error) bool {
			return err == nil && s["view.dpas"] == 1 && s["controller.queue"] == 0 && s["controller.answers"] <= 1 && s["controller.history"] <= 1 &&
				s["controller.failing"] == 0 && s["podwatcher.targets"] <= 1 && s["external.dpas"] == 0
		}
		if !assert.Eventually(t, func() bool { return ok(sizes(addr)) }, 2*testenv.WaitFor, 250*time.Millisecond) {
			s, err := sizes(addr)
			t.Fatalf("entries left behind: %v (%v); logs:\n%s%s", s, err, tail(logs.String(), 40), goroutineDump(addr))
		}
		s, _ := sizes(addr)
		return s
	}
	before := settled()
	profiles := t.TempDir()
	if dir := os.Getenv("FAULTS_PROFILE_DIR"); dir != "" {
		profiles = dir
	}
	heapBefore, goroutinesBefore := heapAfterGC(t, addr, filepath.Join(profiles, "churn-heap-before.pprof"))
	queueBefore := scrapeHistogram(t, getMetrics(t, addr), "lazyscale_workqueue_queue_duration_seconds", map[string]func(string) bool{"name": func(v string) bool { return v == "datadogpodautoscalers" }})

	// Each DPA lives 40 % of the run: created in the first 60 %, updated at 20 %, deleted at 40 %
	// of the run after its creation.
	began := time.Now()
	step := over * 6 / 10 / time.Duration(n)
	life := over * 4 / 10
	var mu sync.Mutex
	var withoutStatus []string
	var errs []error
	var wg sync.WaitGroup
	maxDepth := 0.0
	sampling := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-sampling:
				return
			case <-time.After(500 * time.Millisecond): // sampling period
			}
			if v, err := strconv.ParseFloat(metricValue(addr, `lazyscale_workqueue_depth{name="datadogpodautoscalers"}`), 64); err == nil {
				mu.Lock()
				maxDepth = max(maxDepth, v)
				mu.Unlock()
			}
		}
	})
	var lives sync.WaitGroup
	for i := range n {
		time.Sleep(time.Until(began.Add(time.Duration(i) * step))) // pacing the churn
		name := fmt.Sprintf("churn-%04d", i)
		lives.Go(func() {
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
			born := time.Now()
			if err := create(name); err != nil {
				fail(err)
				return
			}
			time.Sleep(time.Until(born.Add(life / 2))) // pacing: the update halfway through its life
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha2.ForceResourcesAnnotation, `[{"name": "app", "requests": {"cpu": "200m"}}]`)
			if _, err := dpas.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				fail(err)
			}
			time.Sleep(time.Until(born.Add(life))) // pacing: the end of its life
			if !hasStatus(name) {
				mu.Lock()
				withoutStatus = append(withoutStatus, name)
				mu.Unlock()
			}
			if err := dpas.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				fail(err)
			}
		})
	}
	lives.Wait()
	churned := time.Since(began)
	close(sampling)
	wg.Wait()
	require.Empty(t, errs)

	after := settled()
	queue := scrapeHistogram(t, getMetrics(t, addr), "lazyscale_workqueue_queue_duration_seconds", map[string]func(string) bool{"name": func(v string) bool { return v == "datadogpodautoscalers" }}).minus(queueBefore)
	var heapAfter, goroutinesAfter float64
	back := func() bool {
		heapAfter, goroutinesAfter = heapAfterGC(t, addr, filepath.Join(profiles, "churn-heap-after.pprof"))
		return goroutinesAfter <= goroutinesBefore && heapAfter-heapBefore <= 1<<20
	}
	if !assert.Eventually(t, back, testenv.WaitFor, time.Second) {
		back()
		t.Fatalf("goroutines %v → %v, heap %.2f → %.2f MiB (heap profiles in %s: go tool pprof -top -diff_base churn-heap-before.pprof churn-heap-after.pprof)%s",
			goroutinesBefore, goroutinesAfter, heapBefore/(1<<20), heapAfter/(1<<20), profiles, goroutineDump(addr))
	}
	assert.Empty(t, withoutStatus, "DPAs without a status at their deletion")
	t.Logf("%d DPAs churned in %s; entries before %v, after %v; goroutines %v → %v; heap %.2f → %.2f MiB; queue depth at most %v, queue latency p50 %.1f ms p99 %.1f ms over %v adds",
		n, churned.Round(time.Second), before, after, goroutinesBefore, goroutinesAfter, heapBefore/(1<<20), heapAfter/(1<<20), maxDepth,
		queue.quantile(0.5)*1000, queue.quantile(0.99)*1000, queue.count)
	record(t, FaultRecord{
		Case: fmt.Sprintf("DPA churn: %d DPAs created, updated (a new recommendation: a rollout) and deleted over %s, each living %s", n, over, life),
		Lost: "nothing: every DPA had a status before its deletion", Repeated: "nothing",
		Figures: map[string]float64{
			"goroutines before": goroutinesBefore, "goroutines after": goroutinesAfter,
			"heap after GC before (MiB)": heapBefore / (1 << 20), "heap after GC after (MiB)": heapAfter / (1 << 20),
			"queue depth at most": maxDepth, "queue latency p50 (ms)": queue.quantile(0.5) * 1000, "queue latency p99 (ms)": queue.quantile(0.99) * 1000,
		},
		Notes:   "entries per DPA (view, controller history, answers, failures, pod watcher targets, external calls) back to the one DPA left (GET /debug/autoscaling)",
		Command: "FAULTS_LOAD=full go test ./test/e2e -run TestFaultDPAChurn -v",
	})
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// goroutineDump saves the agent's goroutines to a file (for a failure's message).
func goroutineDump(addr string) string {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/debug/pprof/goroutine?debug=2")
	if err != nil {
		return "\n(no goroutine dump: " + err.Error() + ")"
	}
	defer resp.Body.Close()
	f, err := os.CreateTemp("", "lazyscale-goroutines-*.txt")
	if err != nil {
		return ""
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
	return "\ngoroutines: " + f.Name()
}
