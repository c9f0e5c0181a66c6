package main

// The match-condition run (issue 15, item 1): what the workloads scope's CEL match condition
// costs the apiserver, and what it saves. One agent with one DPA on shop/web; the bench then
// swaps the autoscaling entry itself between four variants, in rotating order, and times pod
// creations under each:
//
//   - none: no entry (a cluster without lazyscale);
//   - namespaces: the entry covers shop, no condition (admission.scope namespaces);
//   - workloads: the entry as the agent wrote it, its condition naming shop/web;
//   - workloads-max: the same with the condition naming admission.scope_workloads_max targets.
//
// Interleaving the variants in short batches spreads the apiserver's drift over all of them.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	autoscalingimpl "github.com/lazyscale/lazyscale/comp/admission/autoscaling/impl"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// ConditionsReport is the match-condition run's figures.
type ConditionsReport struct {
	Date   string `json:"date"`
	Rounds int    `json:"rounds"`
	// Batch is how many pods of each kind are created per variant and round.
	Batch    int                 `json:"batch"`
	Variants []ConditionsVariant `json:"variants"`
}

// ConditionsVariant is one shape of the entry, over every round.
type ConditionsVariant struct {
	Name string `json:"name"`
	// Targets the condition names (0: no condition); EntryBytes, the configuration's size.
	Targets    int `json:"targets"`
	EntryBytes int `json:"entry_bytes"`
	// Creates of pods of the DPA's target (shop/web), of another Deployment in the same
	// namespace (shop/batch), and in a namespace without a DPA (other/api).
	Target    *Latency `json:"target"`
	Neighbour *Latency `json:"neighbour"`
	Elsewhere *Latency `json:"elsewhere"`
	// Webhook calls the agent answered for each kind.
	TargetCalls    int `json:"target_calls"`
	NeighbourCalls int `json:"neighbour_calls"`
	ElsewhereCalls int `json:"elsewhere_calls"`
	// The apiserver's match-condition evaluations that excluded a pod (it times only those,
	// and errors): count, mean time, errors.
	CELEvaluations int     `json:"cel_exclusions"`
	CELMeanUs      float64 `json:"cel_mean_us"`
	CELErrors      int     `json:"cel_errors"`
}

// conditionPod is pod i of Deployment deploy in ns, as its ReplicaSet makes it.
func conditionPod(ns, deploy, run string, i int) *corev1.Pod {
	p := modestPod(i, 1)
	hash := "7c9f5d8b4"
	p.Namespace, p.Name = ns, fmt.Sprintf("%s-%s-%s-%05d", deploy, hash, run, i)
	p.Labels = map[string]string{"app": deploy, "pod-template-hash": hash, "team": "payments", "version": "v1.8.0"}
	p.OwnerReferences[0].Name = deploy + "-" + hash
	p.Spec.NodeName = ""
	return p
}

// apiserverSum adds up the apiserver's samples (lines of its /metrics) for which match is true,
// for each of the names asked, which are prefixes of the sample lines.
func apiserverSum(ctx context.Context, kube kubernetes.Interface, match func(line string) bool, names ...string) ([]float64, error) {
	raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	sums := make([]float64, len(names))
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !match(line) {
			continue
		}
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		for i, n := range names {
			if strings.HasPrefix(line, n+"{") || strings.HasPrefix(line, n+" ") {
				sums[i] += v
			}
		}
	}
	return sums, nil
}

// apiserverCEL sums the apiserver's match-condition evaluation histogram and error counter.
func apiserverCEL(ctx context.Context, kube kubernetes.Interface) (count, sumSeconds, errs float64, err error) {
	s, err := apiserverSum(ctx, kube, func(string) bool { return true }, "apiserver_admission_match_condition_evaluation_seconds_count",
		"apiserver_admission_match_condition_evaluation_seconds_sum", "apiserver_admission_match_condition_evaluation_errors_total")
	if err != nil {
		return 0, 0, 0, err
	}
	return s[0], s[1], s[2], nil
}

// mutatingAdmission is the apiserver's own time in its mutating-webhook admission step over
// every CREATE so far: how many, and the seconds in all. It is what a webhook entry costs a
// request it does not send, without etcd and the network around it.
func mutatingAdmission(ctx context.Context, kube kubernetes.Interface) (count, sumSeconds float64, err error) {
	s, err := apiserverSum(ctx, kube, func(l string) bool {
		return strings.Contains(l, `name="MutatingAdmissionWebhook"`) && strings.Contains(l, `operation="CREATE"`) && strings.Contains(l, `type="admit"`)
	}, "apiserver_admission_controller_admission_duration_seconds_count", "apiserver_admission_controller_admission_duration_seconds_sum")
	if err != nil {
		return 0, 0, err
	}
	return s[0], s[1], nil
}

func runConditions(agent, out string) error {
	const rounds, batch = 8, 40
	ctx := context.Background()
	cp, kube, dyn, stopCluster, err := benchCluster(ctx, "conditions")
	if err != nil {
		return err
	}
	defer stopCluster()
	for ns, deploys := range map[string][]string{"shop": {"web", "batch"}, "other": {"api"}} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		for _, d := range deploys {
			if err := createDeployment(ctx, kube, ns, d, 1, conditionPod(ns, d, "tmpl", 0)); err != nil {
				return err
			}
		}
	}
	a, stop, err := startScopeAgent(agent, cp)
	if err != nil {
		return err
	}
	defer stop()
	dpa := testenv.DPA("shop", "web", "web")
	dpa.SetAnnotations(map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`})
	if _, err := dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Create(ctx, dpa, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := waitUntil(2*time.Minute, func() bool {
		d, ok := a.status()
		return ok && d.Webhook != nil && d.Webhook.PatcherInstalled && d.Webhook.Scope != nil && d.Webhook.Scope.MatchesWorkloads && d.Webhook.Scope.Covered == 1
	}); err != nil {
		return fmt.Errorf("the entry never matched shop/web: %w", err)
	}
	configs := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	written, err := configs.Get(ctx, configdef.Defaults().Admission.WebhookName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if len(written.Webhooks) != 1 || len(written.Webhooks[0].MatchConditions) != 1 {
		return fmt.Errorf("want one entry with one condition, got %+v", written.Webhooks)
	}
	// The largest condition the agent writes: shop/web and admission.scope_workloads_max - 1
	// other targets, with names as long as typical ones.
	maxTargets := configdef.Defaults().Admission.ScopeWorkloadsMax
	ws := []admissiondef.Workload{{Namespace: "shop", Kind: "Deployment", Name: "web"}}
	for i := 1; i < maxTargets; i++ {
		ws = append(ws, admissiondef.Workload{Namespace: fmt.Sprintf("team-%03d", i%100), Kind: "Deployment", Name: fmt.Sprintf("checkout-service-%04d", i)})
	}
	type variant struct {
		name    string
		targets int
		entry   []admissionregistrationv1.MutatingWebhook // nil: no configuration
	}
	withConditions := func(c []admissionregistrationv1.MatchCondition) []admissionregistrationv1.MutatingWebhook {
		e := *written.Webhooks[0].DeepCopy()
		e.MatchConditions = c
		return []admissionregistrationv1.MutatingWebhook{e}
	}
	variants := []variant{
		{"none", 0, nil},
		{"namespaces", 0, withConditions(nil)},
		{"workloads", 1, withConditions(written.Webhooks[0].MatchConditions)},
		{"workloads-max", maxTargets, withConditions(autoscalingimpl.WorkloadConditions(ws))},
	}
	type series struct{ target, neighbour, elsewhere []float64 }
	got := make([]series, len(variants))
	r := ConditionsReport{Date: time.Now().UTC().Format(time.RFC3339), Rounds: rounds, Batch: batch}
	for _, v := range variants {
		r.Variants = append(r.Variants, ConditionsVariant{Name: v.name, Targets: v.targets})
	}
	n := 0
	for round := range rounds {
		for k := range variants {
			i := (k + round) % len(variants) // rotate the order: no variant always runs first
			v := &r.Variants[i]
			size, err := swapEntry(ctx, kube, written, variants[i].entry)
			if err != nil {
				return fmt.Errorf("variant %s: %w", variants[i].name, err)
			}
			v.EntryBytes = size
			celCount, celSum, celErrs, err := apiserverCEL(ctx, kube)
			if err != nil {
				return err
			}
			for _, kind := range []struct {
				ns, deploy string
				lat        *[]float64
				calls      *int
			}{{"shop", "web", &got[i].target, &v.TargetCalls}, {"shop", "batch", &got[i].neighbour, &v.NeighbourCalls}, {"other", "api", &got[i].elsewhere, &v.ElsewhereCalls}} {
				_, m := get(a.addr, "/metrics")
				before := webhookCalls(m)
				lat, err := timeCreates(ctx, kube, batch, func(int) *corev1.Pod { n++; return conditionPod(kind.ns, kind.deploy, "r", n) })
				if err != nil {
					return err
				}
				*kind.lat = append(*kind.lat, lat...)
				_, m = get(a.addr, "/metrics")
				*kind.calls += webhookCalls(m) - before
			}
			c2, s2, e2, err := apiserverCEL(ctx, kube)
			if err != nil {
				return err
			}
			v.CELEvaluations += int(c2 - celCount)
			v.CELMeanUs += (s2 - celSum) * 1e6 // the sum, divided below
			v.CELErrors += int(e2 - celErrs)
		}
		fmt.Fprintf(os.Stderr, "round %d of %d\n", round+1, rounds)
	}
	for i := range r.Variants {
		v := &r.Variants[i]
		v.Target, v.Neighbour, v.Elsewhere = latencyOf(got[i].target), latencyOf(got[i].neighbour), latencyOf(got[i].elsewhere)
		if v.CELEvaluations > 0 {
			v.CELMeanUs /= float64(v.CELEvaluations)
		} else {
			v.CELMeanUs = 0
		}
		fmt.Fprintf(os.Stderr, "%-14s entry %6d B: create p50 target %.2f ms (%d calls), neighbour %.2f ms (%d calls), elsewhere %.2f ms (%d calls); CEL %d exclusions, mean %.1f µs, %d errors\n",
			v.Name, v.EntryBytes, v.Target.P50Ms, v.TargetCalls, v.Neighbour.P50Ms, v.NeighbourCalls, v.Elsewhere.P50Ms, v.ElsewhereCalls, v.CELEvaluations, v.CELMeanUs, v.CELErrors)
	}
	return writeReport(r, out, "", nil)
}

// renderConditions renders the match-condition run.
func renderConditions(r *ConditionsReport) string {
	if r == nil {
		return "\nNot measured yet: `make bench-conditions`.\n"
	}
	var w strings.Builder
	fmt.Fprintf(&w, "\nRun %s: %d rounds; in each, every variant in turn (rotating order) with %d creations of each kind of pod. p50 and p90 of the create call, ms.\n\n",
		r.Date, r.Rounds, r.Batch)
	w.WriteString("| entry | configuration | target's pods (shop/web) | a neighbour's pods (shop/batch) | pods elsewhere (other/api) | webhook calls (target / neighbour / elsewhere) | condition evaluations that excluded a pod: count, mean time, errors |\n|---|---|---|---|---|---|---|\n")
	for _, v := range r.Variants {
		name := map[string]string{"none": "none (no lazyscale)", "namespaces": "`namespaces`: selector only", "workloads": "`workloads`: selector + condition, 1 target",
			"workloads-max": fmt.Sprintf("`workloads`: condition with %s targets", thousands(v.Targets))}[v.Name]
		size := "—"
		if v.EntryBytes > 0 {
			size = fmt.Sprintf("%s B", thousands(v.EntryBytes))
		}
		cel := "—"
		if v.CELEvaluations > 0 || v.CELErrors > 0 {
			cel = fmt.Sprintf("%s, %.1f µs, %d", thousands(v.CELEvaluations), v.CELMeanUs, v.CELErrors)
		}
		fmt.Fprintf(&w, "| %s | %s | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %d / %d / %d | %s |\n", name, size,
			v.Target.P50Ms, v.Target.P90Ms, v.Neighbour.P50Ms, v.Neighbour.P90Ms, v.Elsewhere.P50Ms, v.Elsewhere.P90Ms,
			v.TargetCalls, v.NeighbourCalls, v.ElsewhereCalls, cel)
	}
	return w.String()
}

// switchSettle is the pause after each swap of the entry (a measurement window: the apiserver
// reloads webhook configurations from its informer).
const switchSettle = time.Second

// swapEntry replaces the agent's webhook configuration, written, with one holding webhooks
// (none: no configuration), waits switchSettle, and returns the configuration's size in bytes.
func swapEntry(ctx context.Context, kube kubernetes.Interface, written *admissionregistrationv1.MutatingWebhookConfiguration, webhooks []admissionregistrationv1.MutatingWebhook) (int, error) {
	configs := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if err := configs.Delete(ctx, written.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	size := 0
	if webhooks != nil {
		c := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: written.Name, Labels: written.Labels}, Webhooks: webhooks}
		created, err := configs.Create(ctx, c, metav1.CreateOptions{})
		if err != nil {
			return 0, err
		}
		b, _ := json.Marshal(created)
		size = len(b)
	}
	time.Sleep(switchSettle)
	return size, nil
}

// timeCreates creates n+1 pods one at a time and returns the latencies of the last n in ms
// (the first is a warm-up).
func timeCreates(ctx context.Context, kube kubernetes.Interface, n int, pod func(int) *corev1.Pod) ([]float64, error) {
	lat := make([]float64, 0, n)
	for j := range n + 1 {
		p := pod(j)
		start := time.Now()
		if _, err := kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		if j > 0 {
			lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		}
	}
	return lat, nil
}
