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
	return 120, 40 * time.Second
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

// heapAfterGC reads the agent's live heap after two forced collections and its goroutines,
// and saves the heap profile into file.
func heapAfterGC(t *testing.T, addr, file string) (heap, goroutines float64) {
	t.Helper()
	m, err := testenv.AgentMemory(addr)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, m.Profile, 0o644))
	return m.LiveHeap, m.Goroutines
}

// DPA churn: DPAs created, updated (a new recommendation: a rollout) and deleted, each living a
// while, against one agent, in two rounds. Every DPA has a status before it is deleted; after
// each round the agent's entries per DPA are gone and its goroutines back to what they were;
// the second round leaves the heap within 1 MiB of where the first left it. The DPA queue's
// depth and latency are reported.
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

	// A heap sample every 4 KiB, not 512 KiB: at a 3 MiB heap the default rate gives a handful
	// of samples, and the profiles kept on a failure could not say what grew.
	_, addr, logs := oneAgent(t, bin, e, "agent-a", "LAZYSCALE_STATUS_PPROF=true", "GODEBUG=memprofilerate=4096")
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
				s["controller.failing"] == 0 && s["controller.timeline"] <= 1 && s["controller.applied"] <= 1 &&
				s["podwatcher.targets"] <= 1 && s["external.dpas"] == 0
		}
		if !assert.Eventually(t, func() bool { return ok(sizes(addr)) }, 2*testenv.WaitFor, 250*time.Millisecond) {
			s, err := sizes(addr)
			t.Fatalf("entries left behind: %v (%v); logs:\n%s%s", s, err, tail(logs.String(), 40), goroutineDump(addr))
		}
		s, _ := sizes(addr)
		return s
	}
	before := settled()
	// The heap profiles outlive a failed test, so that its message's pprof command works.
	profiles, err := os.MkdirTemp("", "lazyscale-churn-profiles-")
	require.NoError(t, err)
	t.Cleanup(func() {
		if !t.Failed() {
			_ = os.RemoveAll(profiles)
		}
	})
	if dir := os.Getenv("FAULTS_PROFILE_DIR"); dir != "" {
		profiles = dir
	}
	heapStart, goroutinesBefore := heapAfterGC(t, addr, filepath.Join(profiles, "churn-heap-start.pprof"))

	// One round: each DPA lives 40 % of the run: created in the first 60 %, updated at 20 %,
	// deleted at 40 % of the run after its creation.
	step := over * 6 / 10 / time.Duration(n)
	life := over * 4 / 10
	var mu sync.Mutex
	var withoutStatus []string
	round := func(prefix string) (churned time.Duration, maxDepth float64) {
		began := time.Now()
		var errs []error
		var wg sync.WaitGroup
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
			name := fmt.Sprintf("%s-%04d", prefix, i)
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
		churned = time.Since(began)
		close(sampling)
		wg.Wait()
		require.Empty(t, errs)
		return churned, maxDepth
	}
	// back waits until the goroutines are back to the start and the heap within 1 MiB of base.
	back := func(base float64, baseProfile, profile string) (heap, goroutines float64) {
		ok := func() bool {
			heap, goroutines = heapAfterGC(t, addr, filepath.Join(profiles, profile))
			return goroutines <= goroutinesBefore && heap-base <= 1<<20
		}
		if !assert.Eventually(t, ok, testenv.WaitFor, time.Second) {
			ok()
			t.Fatalf("goroutines %v → %v, heap %.2f → %.2f MiB (heap profiles in %s: go tool pprof -top -sample_index=inuse_space -diff_base %s %s)%s",
				goroutinesBefore, goroutines, base/(1<<20), heap/(1<<20), profiles, baseProfile, profile, goroutineDump(addr))
		}
		return heap, goroutines
	}

	// The first round grows the maps that hold entries per DPA (Go maps keep their capacity
	// once emptied: the informer's store and index, the view's, the controller's) to the
	// peak of live DPAs. The second round runs in that room: it must leave the heap where the
	// first left it. Both must leave no entry and no goroutine behind.
	round("first")
	settled()
	heapFirst, _ := heapAfterGC(t, addr, filepath.Join(profiles, "churn-heap-first.pprof"))
	queueBefore := scrapeHistogram(t, getMetrics(t, addr), "lazyscale_workqueue_queue_duration_seconds", map[string]func(string) bool{"name": func(v string) bool { return v == "datadogpodautoscalers" }})
	churned, maxDepth := round("second")
	after := settled()
	queue := scrapeHistogram(t, getMetrics(t, addr), "lazyscale_workqueue_queue_duration_seconds", map[string]func(string) bool{"name": func(v string) bool { return v == "datadogpodautoscalers" }}).minus(queueBefore)
	heapAfter, goroutinesAfter := back(heapFirst, "churn-heap-first.pprof", "churn-heap-after.pprof")
	assert.Empty(t, withoutStatus, "DPAs without a status at their deletion")
	t.Logf("2 × %d DPAs churned (the second in %s); entries before %v, after %v; goroutines %v → %v; heap %.2f at the start, %.2f after the first round, %.2f after the second (MiB); second round: queue depth at most %v, queue latency p50 %.1f ms p99 %.1f ms over %v adds",
		n, churned.Round(time.Second), before, after, goroutinesBefore, goroutinesAfter, heapStart/(1<<20), heapFirst/(1<<20), heapAfter/(1<<20), maxDepth,
		queue.quantile(0.5)*1000, queue.quantile(0.99)*1000, queue.count)
	record(t, FaultRecord{
		Case: fmt.Sprintf("DPA churn: %d DPAs created, updated (a new recommendation: a rollout) and deleted over %s, each living %s; twice", n, over, life),
		Lost: "nothing: every DPA had a status before its deletion; no entry per DPA left, goroutines back to the start", Repeated: "nothing",
		Figures: map[string]float64{
			"goroutines at the start": goroutinesBefore, "goroutines after": goroutinesAfter,
			"heap after GC at the start (MiB)": heapStart / (1 << 20), "heap after GC after the first round (MiB)": heapFirst / (1 << 20),
			"heap after GC after the second round (MiB)": heapAfter / (1 << 20),
			"queue depth at most":                        maxDepth, "queue latency p50 (ms)": queue.quantile(0.5) * 1000, "queue latency p99 (ms)": queue.quantile(0.99) * 1000,
		},
		Notes: "entries per DPA (view, controller history, answers, failures, pod watcher targets, external calls) back to the one DPA left (GET /debug/autoscaling); " +
			"the first round leaves the maps' capacity at the peak of live DPAs (Go maps do not shrink), the second must leave the heap within 1 MiB of where the first left it",
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
