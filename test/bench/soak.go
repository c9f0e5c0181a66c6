package main

// The soak run (issue 16): one agent for -soak (30 minutes) on -pods pods over
// scopeNamespaces namespaces, a DPA per namespace, and constant pod churn through the webhook
// (-soak-churn pods deleted and as many created each second). The agent's heap after GC, its
// resident memory and its goroutines are sampled every -soak-sample; after a warm-up (the
// first fifth) a least-squares line gives each one's slope, against the spread of the samples
// around it. Run by hand, not in CI:
//
//	make build controlplane && go run ./test/bench -soak 30m -pods 20000 -out docs/bench/results-soak.json -plots docs/bench

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/testenv"
)

var (
	soakFor    = flag.Duration("soak", 0, "the soak run instead of the modes: this long, on -pods pods over 100 namespaces with a DPA each and constant pod churn (issue 16)")
	soakChurn  = flag.Int("soak-churn", 10, "soak run: pods deleted and as many created each second")
	soakSample = flag.Duration("soak-sample", 30*time.Second, "soak run: how often memory and goroutines are read")
	soakWarmup = flag.Int("soak-warmup-churn", 100, "soak run: before sampling, every pod is replaced once at this rate a second (0: no warm-up)")
)

// SoakReport is the soak run's figures.
type SoakReport struct {
	Date           string `json:"date"`
	Pods           int    `json:"pods"`
	Namespaces     int    `json:"namespaces"`
	DPAs           int    `json:"dpas"`
	Duration       string `json:"duration"`
	ChurnPerSecond int    `json:"churn_per_second"`
	// Before the samples every pod was replaced once, at WarmupPerSecond: the maps that hold
	// pods (the store's, the pod watcher's per target) reach the capacity churn gives them
	// (Go maps keep the slots deleted keys leave until they grow or prune: one doubling, about
	// 1.4 MiB at 20,000 pods), so that the samples show what churn does later, not that step.
	WarmupReplaced  int      `json:"warmup_replaced"`
	WarmupPerSecond int      `json:"warmup_per_second"`
	WarmupSeconds   float64  `json:"warmup_seconds"`
	WarmupPatched   int64    `json:"warmup_patched"`
	WarmupUnpatched []string `json:"warmup_unpatched,omitempty"` // the first few
	Created         int64    `json:"created"`
	Deleted         int64    `json:"deleted"`
	Patched         int64    `json:"patched"`
	Failed          int64    `json:"failed"`
	// Unpatched creations, explained: the reviews the apiserver admitted without an answer
	// (apiserver_admission_webhook_fail_open_count), and the webhook's answers by outcome
	// (lazyscale_admission_webhook_requests_total), both over the churn.
	FailOpen        float64            `json:"fail_open"`
	WebhookOutcomes map[string]float64 `json:"webhook_outcomes"`
	Unpatched       []string           `json:"unpatched,omitempty"` // the first few
	Samples         []SoakSample       `json:"samples"`
	// From the samples after the warm-up: the slopes per hour, and the standard deviation of
	// the samples around the line (the noise the slope is compared with).
	HeapSlopeMiBPerHour float64 `json:"heap_slope_mib_per_hour"`
	HeapResidualMiB     float64 `json:"heap_residual_mib"`
	// HeapDriftMiB is what the heap's line rises over the samples after the warm-up
	// (slope × their span); HeapFlat: within twice the residual, the noise.
	HeapDriftMiB          float64 `json:"heap_drift_mib"`
	HeapFlat              bool    `json:"heap_flat"`
	RSSSlopeMiBPerHour    float64 `json:"rss_slope_mib_per_hour"`
	RSSResidualMiB        float64 `json:"rss_residual_mib"`
	GoroutineSlopePerHour float64 `json:"goroutine_slope_per_hour"`
	GoroutineResidual     float64 `json:"goroutine_residual"`
}

// SoakSample is one reading of the agent.
type SoakSample struct {
	Seconds    float64 `json:"seconds"`
	HeapBytes  float64 `json:"heap_bytes"`
	RSSBytes   float64 `json:"rss_bytes"`
	Goroutines float64 `json:"goroutines"`
	PodsHeld   float64 `json:"pods_held"`
}

func runSoak(pods int, agent, out, plots string) error {
	ctx := context.Background()
	cp, kube, dyn, stopCluster, err := scopeCluster(ctx, "soak", pods)
	if err != nil {
		return err
	}
	defer stopCluster()
	a, stopAgent, err := startScopeAgent(agent, cp)
	if err != nil {
		return err
	}
	defer stopAgent()
	for i := range scopeNamespaces {
		dpa := testenv.DPA(scopeNS(i), fmt.Sprintf("app-%02d", i), fmt.Sprintf("app-%02d", i))
		dpa.SetAnnotations(map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`})
		if _, err := dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(scopeNS(i)).Create(ctx, dpa, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if err := waitUntil(10*time.Minute, func() bool {
		_, m := get(a.addr, "/metrics")
		return metric(m, `lazyscale_workloadmeta_entities{kind="pod"}`) >= float64(pods)
	}); err != nil {
		return fmt.Errorf("the agent never held the %d pods: %w", pods, err)
	}
	// Before any churn: every namespace's new pods are patched. The webhook's entry covers a
	// target once the leader marked its DPA Active, and the apiserver picks up the entry's
	// changes asynchronously: pods created in the first seconds after the DPAs were made
	// would be admitted before either (that was the 211 of an earlier run).
	if err := untilEveryNamespacePatched(ctx, kube); err != nil {
		return err
	}
	r := SoakReport{Date: time.Now().UTC().Format(time.RFC3339), Pods: pods, Namespaces: scopeNamespaces, DPAs: scopeNamespaces,
		Duration: soakFor.String(), ChurnPerSecond: *soakChurn}
	fmt.Fprintf(os.Stderr, "== soak: %d pods, %d DPAs, %d pods replaced a second, for %s\n", pods, scopeNamespaces, *soakChurn, *soakFor)

	failOpenBefore, err := apiserverSum(ctx, kube, func(string) bool { return true }, "apiserver_admission_webhook_fail_open_count")
	if err != nil {
		return err
	}
	_, m := get(a.addr, "/metrics")
	outcomesBefore := webhookOutcomes(m)

	from := 0
	if *soakWarmup > 0 {
		fmt.Fprintf(os.Stderr, "== warm-up: every pod replaced once, %d a second\n", *soakWarmup)
		var warm SoakReport
		began := time.Now()
		churnPods(ctx, kube, pods, *soakWarmup, 0, pods, &warm)
		if warm.Failed > 0 {
			return fmt.Errorf("warm-up: %d of %d replacements failed", warm.Failed, pods)
		}
		from, r.WarmupReplaced, r.WarmupPerSecond, r.WarmupSeconds, r.WarmupPatched = pods, pods, *soakWarmup, time.Since(began).Seconds(), warm.Patched
		r.WarmupUnpatched = warm.Unpatched
		fmt.Fprintf(os.Stderr, "   warm-up: %d replaced in %.0fs, %d patched, unpatched %v\n", pods, r.WarmupSeconds, warm.Patched, warm.Unpatched)
	}

	soakCtx, cancel := context.WithTimeout(ctx, *soakFor)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { churnPods(soakCtx, kube, pods, *soakChurn, from, 0, &r) })
	began := time.Now()
	sample := func() error {
		heap, rss, err := a.memory(fmt.Sprintf("soak-%03d", len(r.Samples)))
		if err != nil {
			return err
		}
		_, m := get(a.addr, "/metrics")
		r.Samples = append(r.Samples, SoakSample{Seconds: time.Since(began).Seconds(), HeapBytes: heap, RSSBytes: rss,
			Goroutines: metric(m, "go_goroutines"), PodsHeld: metric(m, `lazyscale_workloadmeta_entities{kind="pod"}`)})
		s := r.Samples[len(r.Samples)-1]
		fmt.Fprintf(os.Stderr, "   %6.0fs heap %.1f MiB, rss %.1f MiB, goroutines %.0f, pods %.0f\n", s.Seconds, s.HeapBytes/(1<<20), s.RSSBytes/(1<<20), s.Goroutines, s.PodsHeld)
		return nil
	}
	ticker := time.NewTicker(*soakSample)
	defer ticker.Stop()
	if err := sample(); err != nil {
		return err
	}
sampling:
	for {
		select {
		case <-soakCtx.Done():
			break sampling
		case <-ticker.C:
			if err := sample(); err != nil {
				return err
			}
		}
	}
	wg.Wait()
	if err := sample(); err != nil {
		return err
	}
	failOpen, err := apiserverSum(ctx, kube, func(string) bool { return true }, "apiserver_admission_webhook_fail_open_count")
	if err != nil {
		return err
	}
	r.FailOpen = failOpen[0] - failOpenBefore[0]
	_, m = get(a.addr, "/metrics")
	r.WebhookOutcomes = webhookOutcomes(m)
	for k, v := range outcomesBefore {
		r.WebhookOutcomes[k] -= v
	}
	fmt.Fprintf(os.Stderr, "== created %d, deleted %d, patched %d, failed %d; fail open %.0f; webhook outcomes %v; unpatched %v\n",
		r.Created, r.Deleted, r.Patched, r.Failed, r.FailOpen, r.WebhookOutcomes, r.Unpatched)
	if *profileDir != "" && cp.AuditLog != "" && (len(r.Unpatched) > 0 || len(r.WarmupUnpatched) > 0) {
		// The apiserver's account of the unpatched pods' creations: was the webhook called?
		if b, err := os.ReadFile(cp.AuditLog); err == nil {
			_ = os.WriteFile(filepath.Join(*profileDir, "soak-audit.log"), b, 0o644)
		}
	}
	after := afterWarmup(r.Samples)
	fit := func(v func(SoakSample) float64, scale float64) (perHour, residual float64) {
		slope, _, res := leastSquares(after, v)
		return slope * 3600 / scale, res / scale
	}
	r.HeapSlopeMiBPerHour, r.HeapResidualMiB = fit(func(s SoakSample) float64 { return s.HeapBytes }, 1<<20)
	if len(after) > 1 {
		r.HeapDriftMiB = r.HeapSlopeMiBPerHour * (after[len(after)-1].Seconds - after[0].Seconds) / 3600
	}
	r.HeapFlat = math.Abs(r.HeapDriftMiB) <= 2*r.HeapResidualMiB
	r.RSSSlopeMiBPerHour, r.RSSResidualMiB = fit(func(s SoakSample) float64 { return s.RSSBytes }, 1<<20)
	r.GoroutineSlopePerHour, r.GoroutineResidual = fit(func(s SoakSample) float64 { return s.Goroutines }, 1)
	fmt.Fprintf(os.Stderr, "== heap %+.2f MiB/h: %+.3f MiB over the samples against a residual of %.3f MiB (flat: %v); rss %+.1f MiB/h (residual %.1f); goroutines %+.1f/h (residual %.1f)\n",
		r.HeapSlopeMiBPerHour, r.HeapDriftMiB, r.HeapResidualMiB, r.HeapFlat, r.RSSSlopeMiBPerHour, r.RSSResidualMiB, r.GoroutineSlopePerHour, r.GoroutineResidual)
	return writeReport(r, out, plots, func(dir string) error { return soakPlots(r, dir) })
}

// churnPods replaces pods at rate a second: the oldest is deleted, a new one of the same
// namespace and Deployment created through the apiserver (and so the webhook). from is how many
// were replaced before; it stops after count replacements (0: when ctx ends).
func churnPods(ctx context.Context, kube kubernetes.Interface, pods, rate, from, count int, r *SoakReport) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var created, deleted, patched, failed atomic.Int64
	var mu sync.Mutex
	var unpatched []string
	defer func() {
		r.Created, r.Deleted, r.Patched, r.Failed, r.Unpatched = created.Load(), deleted.Load(), patched.Load(), failed.Load(), unpatched
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	oldest, next := from, pods+from
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		old, fresh := scopePod(oldest), scopePod(next)
		oldest++
		next++
		wg.Go(func() {
			reqCtx := context.WithoutCancel(ctx)
			if err := kube.CoreV1().Pods(old.Namespace).Delete(reqCtx, old.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
				failed.Add(1)
			} else {
				deleted.Add(1)
			}
			p, err := applyPod(reqCtx, kube, fresh)
			if err != nil {
				failed.Add(1)
				return
			}
			created.Add(1)
			if p.Annotations[v1alpha2.RecommendationIDAnnotation] != "" {
				patched.Add(1)
				return
			}
			mu.Lock()
			if len(unpatched) < 20 {
				unpatched = append(unpatched, p.Namespace+"/"+p.Name+" at "+time.Now().UTC().Format(time.RFC3339))
			}
			mu.Unlock()
		})
	}
}

// untilEveryNamespacePatched creates a probe pod of each namespace's Deployment until one is
// patched in every namespace; the probes are deleted.
func untilEveryNamespacePatched(ctx context.Context, kube kubernetes.Interface) error {
	patched := make([]bool, scopeNamespaces)
	attempt := 0
	err := waitUntil(5*time.Minute, func() bool {
		attempt++
		all := true
		for i := range scopeNamespaces {
			if patched[i] {
				continue
			}
			probe := scopePod(i)
			probe.Name = fmt.Sprintf("%s-probe-%d", probe.Name, attempt)
			if got, err := applyPod(ctx, kube, probe); err == nil {
				patched[i] = got.Annotations[v1alpha2.RecommendationIDAnnotation] != ""
				_ = kube.CoreV1().Pods(got.Namespace).Delete(ctx, got.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			}
			all = all && patched[i]
		}
		return all
	})
	if err != nil {
		return fmt.Errorf("the webhook never patched a new pod in every namespace: %w", err)
	}
	fmt.Fprintf(os.Stderr, "== every namespace's new pods patched (%d probe rounds)\n", attempt)
	return nil
}

// webhookOutcomes sums the autoscaling webhook's answers by outcome from the agent's /metrics.
func webhookOutcomes(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, "lazyscale_admission_webhook_requests_total{")
		if !ok || !strings.Contains(rest, `webhook="autoscaling"`) {
			continue
		}
		_, after, _ := strings.Cut(rest, `outcome="`)
		outcome, _, _ := strings.Cut(after, `"`)
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		out[outcome] += v
	}
	return out
}

// afterWarmup is the samples the slopes are fitted to: all but the first fifth.
func afterWarmup(samples []SoakSample) []SoakSample { return samples[len(samples)/5:] }

// leastSquares fits v against time: the slope per second, the value at time 0, and the
// residuals' standard deviation.
func leastSquares(samples []SoakSample, v func(SoakSample) float64) (slope, intercept, residual float64) {
	n := float64(len(samples))
	if n < 2 {
		return 0, 0, 0
	}
	var sx, sy, sxx, sxy float64
	for _, s := range samples {
		x, y := s.Seconds, v(s)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	slope = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	intercept = (sy - slope*sx) / n
	var ss float64
	for _, s := range samples {
		d := v(s) - (intercept + slope*s.Seconds)
		ss += d * d
	}
	return slope, intercept, math.Sqrt(ss / n)
}

// soakPlots draws the agent's memory and goroutines over the run.
func soakPlots(r SoakReport, dir string) error {
	draw := func(file, title, y string, lines map[string]func(SoakSample) float64, order []string) error {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = y
		p.Y.Min = 0
		if err := addLines(p, r.Samples, lines, order, 0); err != nil {
			return err
		}
		p.Legend.Top = true
		p.Y.Max *= 1.35 // room for the legend above the lines
		return p.Save(7*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, file))
	}
	if err := draw("soak-memory.png", fmt.Sprintf("Soak: %d pods, %d DPAs, %d pods replaced a second", r.Pods, r.DPAs, r.ChurnPerSecond), "MiB",
		map[string]func(SoakSample) float64{
			"Go heap after GC": func(s SoakSample) float64 { return s.HeapBytes / (1 << 20) },
			"resident (RSS)":   func(s SoakSample) float64 { return s.RSSBytes / (1 << 20) },
		}, []string{"Go heap after GC", "resident (RSS)"}); err != nil {
		return err
	}
	if err := soakHeapPlot(r, dir); err != nil {
		return err
	}
	return draw("soak-goroutines.png", "Soak: goroutines", "goroutines",
		map[string]func(SoakSample) float64{"goroutines": func(s SoakSample) float64 { return s.Goroutines }}, []string{"goroutines"})
}

// soakHeapPlot draws the heap alone on an axis that shows its noise: the samples, the
// least-squares line over those after the warm-up fifth, and that line ± twice the residual
// (where "flat" puts the line's whole rise).
func soakHeapPlot(r SoakReport, dir string) error {
	mib := func(s SoakSample) float64 { return s.HeapBytes / (1 << 20) }
	after := afterWarmup(r.Samples)
	if len(after) < 2 {
		return nil
	}
	slope, intercept, res := leastSquares(after, mib)
	fitted := func(off float64) func(SoakSample) float64 {
		return func(s SoakSample) float64 { return intercept + slope*s.Seconds + off }
	}
	p := plot.New()
	verdict := "not flat"
	if r.HeapFlat {
		verdict = "flat"
	}
	p.Title.Text = fmt.Sprintf("Soak: Go heap after GC, %+.2f MiB/h (%+.3f MiB over the fit, noise %.3f MiB: %s)", r.HeapSlopeMiBPerHour, r.HeapDriftMiB, r.HeapResidualMiB, verdict)
	p.X.Label.Text = "minutes"
	p.Y.Label.Text = "MiB"
	if err := addLines(p, r.Samples, map[string]func(SoakSample) float64{"heap after GC": mib}, []string{"heap after GC"}, 0); err != nil {
		return err
	}
	if err := addLines(p, after, map[string]func(SoakSample) float64{"least squares (after the first fifth)": fitted(0)},
		[]string{"least squares (after the first fifth)"}, 1); err != nil {
		return err
	}
	for i, off := range []float64{2 * res, -2 * res} {
		l, err := plotter.NewLine(plotter.XYs{{X: after[0].Seconds / 60, Y: fitted(off)(after[0])}, {X: after[len(after)-1].Seconds / 60, Y: fitted(off)(after[len(after)-1])}})
		if err != nil {
			return err
		}
		l.Color, l.Width, l.Dashes = palette[2%len(palette)], vg.Points(0.75), []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		if i == 0 {
			p.Legend.Add("± twice the residual", l)
		}
	}
	lo, hi := p.Y.Min, p.Y.Max
	p.Y.Min, p.Y.Max = lo-(hi-lo)*0.2, hi+(hi-lo)*0.6 // room for the legend
	p.Legend.Top = true
	return p.Save(7*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, "soak-heap.png"))
}

// addLines adds a line per name of order, of the samples' values, coloured from palette
// from index colour on.
func addLines(p *plot.Plot, samples []SoakSample, lines map[string]func(SoakSample) float64, order []string, colour int) error {
	for i, name := range order {
		pts := make(plotter.XYs, len(samples))
		for j, s := range samples {
			pts[j] = plotter.XY{X: s.Seconds / 60, Y: lines[name](s)}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = palette[(colour+i)%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(name, l)
	}
	return nil
}
