package main

// The takeover run (issue 15, item 3): how long a new leader takes to act after the leader is
// killed, when followers hold no pods (the default: the new leader collects its scope first)
// and when they do (workloadmeta.pods.on_followers). N pods over 100 namespaces, a DPA on the
// Deployment of 98 of them (so the collection is cluster-wide: every pod is in scope), two
// agent processes with a 4 s Lease. The leader is SIGKILLed, a DPA is created at the same moment
// on a Deployment that had none, and the clock stops when the survivor has rolled it out. (A
// changed recommendation of a DPA the old leader had just rolled out would measure
// autoscaling.workload.rollout_interval, not the takeover.)

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// TakeoverReport is the takeover run's figures.
type TakeoverReport struct {
	Date          string         `json:"date"`
	Pods          int            `json:"pods"`
	Namespaces    int            `json:"namespaces"`
	LeaseDuration string         `json:"lease_duration"`
	RetryPeriod   string         `json:"retry_period"`
	Variants      []TakeoverCase `json:"variants"`
}

// TakeoverCase is one takeover: with followers holding pods or not.
type TakeoverCase struct {
	OnFollowers bool `json:"on_followers"`
	// FollowerPods is what the follower held before the kill; FollowerHeap its Go heap.
	FollowerPods      int     `json:"follower_pods"`
	FollowerHeapBytes float64 `json:"follower_heap_bytes"`
	// From the SIGKILL: the survivor holds the Lease, its pod collection is synced, and the
	// changed recommendation is rolled out (the Deployment's template carries its rec-id).
	LeaseMs       float64 `json:"lease_ms"`
	SyncedMs      float64 `json:"synced_ms"`
	FirstActionMs float64 `json:"first_action_ms"`
	// Requests the survivor made from the kill to its first action, by verb and resource.
	Requests map[string]int `json:"requests"`
}

const (
	takeoverLease = "4s"
	takeoverRetry = "500ms"
)

func runTakeover(pods int, agent, out string) error {
	ctx := context.Background()
	cp, kube, dyn, stopCluster, err := scopeCluster(ctx, "takeover", pods)
	if err != nil {
		return err
	}
	defer stopCluster()
	// team-00 and team-01 get theirs at the kill, one per run.
	for i := 2; i < scopeNamespaces; i++ {
		if err := createTakeoverDPA(ctx, dyn, i); err != nil {
			return err
		}
	}
	r := TakeoverReport{Date: time.Now().UTC().Format(time.RFC3339), Pods: pods, Namespaces: scopeNamespaces, LeaseDuration: takeoverLease, RetryPeriod: takeoverRetry}
	for run, onFollowers := range []bool{false, true} {
		c, err := takeover(ctx, kube, dyn, cp, agent, run, onFollowers)
		if err != nil {
			return fmt.Errorf("on_followers=%v: %w", onFollowers, err)
		}
		fmt.Fprintf(os.Stderr, "on_followers=%v: follower held %d pods (heap %.2f MiB); after the SIGKILL: Lease %.0f ms, pods synced %.0f ms, first rollout %.0f ms; requests %v\n",
			onFollowers, c.FollowerPods, c.FollowerHeapBytes/mib, c.LeaseMs, c.SyncedMs, c.FirstActionMs, c.Requests)
		r.Variants = append(r.Variants, c)
	}
	return writeReport(r, out, "", nil)
}

// createTakeoverDPA creates the DPA of app-<i> in team-<i>, with a recommendation.
func createTakeoverDPA(ctx context.Context, dyn dynamic.Interface, i int) error {
	name := fmt.Sprintf("app-%02d", i)
	dpa := testenv.DPA(scopeNS(i), name, name)
	dpa.SetAnnotations(map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`})
	_, err := dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(scopeNS(i)).Create(ctx, dpa, metav1.CreateOptions{})
	return err
}

// templateRecID is the rec-id on a Deployment's pod template.
func templateRecID(ctx context.Context, kube kubernetes.Interface, ns, name string) string {
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return d.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation]
}

// takeover runs a leader and a follower, waits until the leader has acted (app-02 rolled out),
// kills it, creates the DPA of app-<run>, and times the survivor.
func takeover(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, cp *controlplane.ControlPlane, agent string, run int, onFollowers bool) (TakeoverCase, error) {
	c := TakeoverCase{OnFollowers: onFollowers}
	env := func(identity string) []string {
		return []string{"LAZYSCALE_LEADER_ELECTION_IDENTITY=" + identity, "LAZYSCALE_LEADER_ELECTION_LEASE_DURATION=" + takeoverLease,
			"LAZYSCALE_LEADER_ELECTION_RENEW_DEADLINE=3s", "LAZYSCALE_LEADER_ELECTION_RETRY_PERIOD=" + takeoverRetry,
			fmt.Sprintf("LAZYSCALE_WORKLOADMETA_PODS_ON_FOLLOWERS=%v", onFollowers)}
	}
	leaderID, followerID := fmt.Sprintf("leader-%d", run), fmt.Sprintf("follower-%d", run)
	leader, stopLeader, err := startScopeAgent(agent, cp, env(leaderID)...)
	if err != nil {
		return c, err
	}
	defer stopLeader()
	if err := waitUntil(5*time.Minute, func() bool {
		d, ok := leader.status()
		return ok && d.Leader != nil && d.Leader.Leader && d.Autoscaling.State == "running"
	}); err != nil {
		return c, fmt.Errorf("the first agent never led: %w", err)
	}
	follower, stopFollower, err := startScopeAgent(agent, cp, env(followerID)...)
	if err != nil {
		return c, err
	}
	defer stopFollower()
	// The follower is ready to take over: its gate is open and its DPA view synced; with
	// on_followers its pods too.
	if err := waitUntil(5*time.Minute, func() bool {
		d, ok := follower.status()
		if !ok || !d.Gate.Open || d.Webhook == nil || !d.Webhook.PatcherInstalled {
			return false
		}
		return !onFollowers || (d.PodCollection != nil && d.PodCollection.Scope != nil && d.PodCollection.Scope.Synced)
	}); err != nil {
		return c, fmt.Errorf("the follower never got ready: %w", err)
	}
	// The leader has acted on every DPA before the kill (it rolled every target out): the
	// survivor's first pass finds nothing left over from a backlog.
	if err := waitUntil(10*time.Minute, func() bool {
		l, err := kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false
		}
		n := 0
		for _, d := range l.Items {
			if d.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation] != "" {
				n++
			}
		}
		return n >= scopeNamespaces-2+run
	}); err != nil {
		return c, fmt.Errorf("the leader never rolled every target out: %w", err)
	}
	time.Sleep(2 * time.Second) // a measurement window: the follower settles
	if c.FollowerHeapBytes, _, err = follower.memory("follower"); err != nil {
		return c, err
	}
	if d, ok := follower.status(); ok && d.PodCollection != nil {
		c.FollowerPods = d.PodCollection.Pods
	}

	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return c, err
	}
	killed := time.Now()
	auditAt, err := fileSize(cp.AuditLog)
	if err != nil {
		return c, err
	}
	target := fmt.Sprintf("app-%02d", run)
	if err := createTakeoverDPA(ctx, dyn, run); err != nil {
		return c, err
	}
	var leased, synced time.Time
	if err := waitUntil(5*time.Minute, func() bool {
		d, ok := follower.status()
		if ok && leased.IsZero() && d.Leader != nil && d.Leader.Leader {
			leased = time.Now()
		}
		if ok && synced.IsZero() && !leased.IsZero() && d.PodCollection != nil && d.PodCollection.Scope != nil && d.PodCollection.Scope.Synced {
			synced = time.Now()
		}
		return templateRecID(ctx, kube, scopeNS(run), target) != ""
	}); err != nil {
		return c, fmt.Errorf("the survivor never rolled the new DPA's target out: %w", err)
	}
	acted := time.Now()
	ms := func(t time.Time) float64 {
		if t.IsZero() {
			t = acted // seen only at the last poll
		}
		return float64(t.Sub(killed).Microseconds()) / 1000
	}
	c.LeaseMs, c.SyncedMs, c.FirstActionMs = ms(leased), ms(synced), ms(acted)
	c.Requests, err = requestsBy(cp.AuditLog, auditAt, "lazyscale")
	return c, err
}

// renderTakeover renders the takeover run.
func renderTakeover(r *TakeoverReport) string {
	if r == nil {
		return "\nNot measured yet: `make bench-takeover`.\n"
	}
	var w strings.Builder
	fmt.Fprintf(&w, "\nRun %s: %s pods in %d namespaces, a DPA in %d of them (the collection is cluster-wide), Lease %s, retry %s. Times from the leader's SIGKILL, when a DPA is created on a Deployment that had none.\n\n",
		r.Date, thousands(r.Pods), r.Namespaces, r.Namespaces-2, r.LeaseDuration, r.RetryPeriod)
	w.WriteString("| followers | follower holds | follower's Go heap | survivor holds the Lease | its pods synced | first action (that Deployment rolled out) | the survivor's requests until then |\n|---|---|---|---|---|---|---|\n")
	for _, c := range r.Variants {
		how := "no pods (default)"
		if c.OnFollowers {
			how = "pods (`workloadmeta.pods.on_followers`)"
		}
		total, keys := 0, make([]string, 0, len(c.Requests))
		for k, n := range c.Requests {
			total += n
			if n >= 10 {
				keys = append(keys, fmt.Sprintf("%d %s", n, k))
			}
		}
		sort.Strings(keys)
		fmt.Fprintf(&w, "| %s | %s pods | %.2f MiB | %.1f s | %.1f s | %.1f s | %d (%s) |\n", how, thousands(c.FollowerPods), c.FollowerHeapBytes/mib,
			c.LeaseMs/1000, c.SyncedMs/1000, c.FirstActionMs/1000, total, strings.Join(keys, ", "))
	}
	return w.String()
}
