package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	wmfx "github.com/lazyscale/lazyscale/comp/workloadmeta/fx"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// The fault suite (issue 16): each case runs the real binary against the real control plane,
// breaks something, and records what was lost or repeated and how long recovery took. `make
// faults` runs every case and writes the records to docs/reliability.json
// (FAULTS_RECORD; not a LAZYSCALE_ variable: the agent refuses unknown ones), from which docs/reliability.md's table is rendered; `make test`
// runs the fast ones.

// FaultRecord is one case's outcome, as docs/reliability.md shows it.
type FaultRecord struct {
	Case     string             `json:"case"`
	Lost     string             `json:"lost"`
	Repeated string             `json:"repeated"`
	Figures  map[string]float64 `json:"figures"`
	Notes    string             `json:"notes,omitempty"`
	Date     string             `json:"date"`
	Command  string             `json:"command"`
}

var recordMu sync.Mutex

// record merges r into the file FAULTS_RECORD names (by case), when it is set.
func record(t *testing.T, r FaultRecord) {
	t.Helper()
	t.Logf("fault record: %+v", r)
	path := os.Getenv("FAULTS_RECORD")
	if path == "" {
		return
	}
	if t.Failed() {
		t.Log("not recorded: the case failed")
		return
	}
	recordMu.Lock()
	defer recordMu.Unlock()
	var all []FaultRecord
	if raw, err := os.ReadFile(path); err == nil {
		require.NoError(t, json.Unmarshal(raw, &all), path)
	}
	r.Date = time.Now().UTC().Format(time.RFC3339)
	all = slices.DeleteFunc(all, func(x FaultRecord) bool { return x.Case == r.Case })
	all = append(all, r)
	slices.SortFunc(all, func(a, b FaultRecord) int { return strings.Compare(a.Case, b.Case) })
	raw, err := json.MarshalIndent(all, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(raw, '\n'), 0o644))
}

// heldPods is what the agent's store holds (GET /debug/pods, with status.pprof on), as
// namespace/name/uid.
func heldPods(addr string) ([]string, error) {
	resp, err := http.Get("http://" + addr + "/debug/pods")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/debug/pods: HTTP %d", resp.StatusCode)
	}
	var doc struct{ Pods []wmfx.HeldPod }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(doc.Pods))
	for _, p := range doc.Pods {
		out = append(out, p.Namespace+"/"+p.Name+"/"+p.UID)
	}
	return out, nil
}

// apiserverPods is what the apiserver holds of a namespace's non-terminal pods, as heldPods.
func apiserverPods(ctx context.Context, e *testenv.Env, ns string) ([]string, error) {
	list, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, p.Namespace+"/"+p.Name+"/"+string(p.UID))
	}
	slices.Sort(out)
	return out, nil
}

// metricValue reads one sample of the agent's /metrics ("" when absent).
func metricValue(addr, sample string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// probePod creates a pod of the Deployment's current ReplicaSet, as its controller would (owner
// and pod-template-hash), and returns it as admitted.
func probePod(t *testing.T, e *testenv.Env, ns, deployment string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	dep, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
	require.NoError(t, err)
	rss, err := e.Kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + deployment})
	require.NoError(t, err)
	for _, rs := range rss.Items {
		if rs.Annotations["deployment.kubernetes.io/revision"] != dep.Annotations["deployment.kubernetes.io/revision"] {
			continue
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: rs.Name + "-probe-", Namespace: ns, Labels: rs.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: testenv.Ptr(true)}}},
			Spec: *rs.Spec.Template.Spec.DeepCopy(),
		}
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{} // as before the recommendation
		created, err := e.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		require.NoError(t, err)
		return created
	}
	t.Fatalf("no current ReplicaSet of %s/%s", ns, deployment)
	return nil
}

func lines(s string) int { return strings.Count(s, "\n") }

// oneAgent starts the binary as a replica with its webhook on a free local port.
func oneAgent(t *testing.T, bin string, e *testenv.Env, identity string, env ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	port := strconv.Itoa(testenv.FreePort(t))
	return startAgent(t, bin, e, identity, port, "https://127.0.0.1:"+port, env...)
}

// cartDPA creates DPA ns/cart on Deployment cart with annotations.
func cartDPA(t *testing.T, e *testenv.Env, ns string, annotations map[string]string) {
	t.Helper()
	dpa := testenv.DPA(ns, "cart", "cart")
	dpa.SetAnnotations(annotations)
	_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Create(context.Background(), dpa, metav1.CreateOptions{})
	require.NoError(t, err)
}

// faultCluster builds the binary and a control plane of its own that runs workloads (one kwok
// node), with Deployment shop/cart running replicas pods.
func faultCluster(t *testing.T, replicas int32) (bin string, e *testenv.Env, ns string) {
	t.Helper()
	bin = buildBinary(t)
	e = testenv.NewEnvWith(t, controlplane.Options{InstallCRDs: true, Nodes: 1})
	ns = e.Namespace("shop", nil)
	d := testenv.Deployment(ns, "cart", nil)
	d.Spec.Replicas = testenv.Ptr(replicas)
	_, err := e.Kube.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(e.RunningPods(ns, "cart")) == int(replicas) }, testenv.WaitFor, 200*time.Millisecond)
	return bin, e, ns
}

// kube-apiserver is SIGKILLed while the agent leads and acts, and stays down longer than the
// Lease: the agent recovers without a restart, its store equals the apiserver's pods again,
// nothing is rolled out twice, pods created after the restart are patched, and its log says what
// happened without flooding.
func TestFaultAPIServerKilledWhileActive(t *testing.T) {
	const down = 10 * time.Second // longer than the Lease (4 s): leadership is lost and taken again
	bin, e, ns := faultCluster(t, 3)
	ctx := context.Background()

	_, addr, logs := oneAgent(t, bin, e, "agent-a", "LAZYSCALE_STATUS_PPROF=true")
	cartDPA(t, e, ns, map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`})
	patched := func(p corev1.Pod) bool { return p.Spec.Containers[0].Resources.Requests.Cpu().String() == "300m" }
	allPatched := func(n int) func() bool {
		return func() bool {
			pods := e.RunningPods(ns, "cart")
			return len(pods) == n && !slices.ContainsFunc(pods, func(p corev1.Pod) bool { return !patched(p) })
		}
	}
	require.Eventually(t, allPatched(3), testenv.WaitFor, 200*time.Millisecond, "the rollout never completed; logs:\n%s", logs)
	dep, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, "cart", metav1.GetOptions{})
	require.NoError(t, err)
	recID := dep.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation]
	require.NotEmpty(t, recID)
	rollouts := metricValue(addr, `lazyscale_autoscaling_vertical_rollouts_total{result="success"}`)
	require.Equal(t, "1", rollouts)
	writesBefore := len(e.LazyscaleRequests("deployments", "patch", "update"))

	// Down.
	before := lines(logs.String())
	require.NoError(t, e.CP.KillAPIServer())
	time.Sleep(down) // the outage itself, not a wait for a condition
	duringDown := lines(logs.String()) - before
	restarted := time.Now()
	require.NoError(t, e.CP.RestartAPIServer(ctx))
	apiserverReady := time.Since(restarted)
	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err, "the agent exited while the apiserver was down; logs:\n%s", logs)
	resp.Body.Close()

	// The store converges on the apiserver's pods, exactly.
	var held, want []string
	require.Eventually(t, func() bool {
		if held, err = heldPods(addr); err != nil {
			return false
		}
		want, err = apiserverPods(ctx, e, ns)
		return err == nil && len(want) == 3 && slices.Equal(held, want)
	}, testenv.WaitFor, 100*time.Millisecond, "the store never matched the apiserver: held %v, want %v; logs:\n%s", held, want, logs)
	storeIn := time.Since(restarted)

	// A pod of the workload created right after the restart is patched: the apiserver still has
	// the webhook's entry, and the agent answers with the DPA's recommendation.
	probe := probePod(t, e, ns, "cart")
	probeIn := time.Since(restarted)
	assert.Equal(t, "300m", probe.Spec.Containers[0].Resources.Requests.Cpu().String(), "a pod created after the restart was not patched")
	require.NoError(t, e.Kube.CoreV1().Pods(ns).Delete(ctx, probe.Name, metav1.DeleteOptions{}))

	// And the Deployment's next pod, once kube-controller-manager is back too.
	_, err = e.Kube.AppsV1().Deployments(ns).Patch(ctx, "cart", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	require.Eventually(t, allPatched(4), testenv.WaitFor, 200*time.Millisecond, "a pod created after the restart was not patched; logs:\n%s", logs)
	patchedIn := time.Since(restarted)
	require.Eventually(t, func() bool {
		held, err = heldPods(addr)
		if err != nil {
			return false
		}
		want, err = apiserverPods(ctx, e, ns)
		return err == nil && slices.Equal(held, want)
	}, testenv.WaitFor, 100*time.Millisecond, "the store missed the new pod: held %v, want %v", held, want)

	// Nothing was done twice: the template still carries the one rollout, lazyscale wrote the
	// Deployment no more (the audit log spans both apiservers), and the counter agrees.
	dep, err = e.Kube.AppsV1().Deployments(ns).Get(ctx, "cart", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, recID, dep.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation], "rolled out again")
	assert.Equal(t, writesBefore, len(e.LazyscaleRequests("deployments", "patch", "update")), "lazyscale wrote the Deployment again")
	assert.Equal(t, rollouts, metricValue(addr, `lazyscale_autoscaling_vertical_rollouts_total{result="success"}`))

	perSecond := float64(duringDown) / down.Seconds()
	assert.LessOrEqual(t, perSecond, 3.0, "the log floods while the apiserver is down:\n%s", logs.String())
	t.Logf("while down: %d log lines in %s; from the restart: apiserver ready %s, store equal %s, a pod created and patched %s, the Deployment's new pod running patched %s",
		duringDown, down, apiserverReady, storeIn, probeIn, patchedIn)
	record(t, FaultRecord{
		Case: "kube-apiserver SIGKILLed for 10 s while the agent leads (3 pods rolled out)", Lost: "nothing: store equal to the apiserver's pods, the new pod patched",
		Repeated: "nothing: 1 rollout, no Deployment write after the restart",
		Figures: map[string]float64{"log lines/s while down": perSecond, "apiserver ready after restart (s)": apiserverReady.Seconds(),
			"store equal after restart (s)": storeIn.Seconds(), "a pod created after restart patched (s)": probeIn.Seconds(),
			"the Deployment's next pod running, patched (s)": patchedIn.Seconds()},
		Notes: "the Lease (4 s) expires meanwhile: leadership is lost and taken again, the pod collection released and listed again; " +
			"the Deployment's next pod waits for kube-controller-manager's own reconnection",
		Command: "go test ./test/e2e -run TestFaultAPIServerKilledWhileActive -v",
	})
}

// write is one of lazyscale's write requests as the audit log has it.
type write struct {
	URI  string
	At   time.Duration // after the time asked for
	Code int
}

func (w write) String() string {
	return fmt.Sprintf("%s at %s: %d", w.URI, w.At.Round(time.Millisecond), w.Code)
}

// accepted: the apiserver applied it.
func (w write) accepted() bool { return w.Code == http.StatusOK || w.Code == http.StatusCreated }

// writesAfter are lazyscale's writes (create, update, patch, delete) the apiserver received
// after t.
func writesAfter(e *testenv.Env, t time.Time) []write {
	var out []write
	for _, ev := range e.LazyscaleRequests("", "create", "update", "patch", "delete") {
		if ev.RequestReceivedTimestamp.After(t) {
			w := write{URI: ev.Verb + " " + ev.RequestURI, At: ev.RequestReceivedTimestamp.Sub(t)}
			if ev.ResponseStatus != nil {
				w.Code = ev.ResponseStatus.Code
			}
			out = append(out, w)
		}
	}
	return out
}

// The Lease is taken over by hand while the agent leads and acts: the agent stops writing at
// once (within a retry period, not the renew deadline), writes nothing more (the audit log says
// so, even when its DPA asks for a new scale), and does not fight for the Lease while the other
// holder keeps it.
func TestFaultLeaseTakenWhileLeading(t *testing.T) {
	bin, e, ns := faultCluster(t, 1)
	ctx := context.Background()
	_, addr, logs := oneAgent(t, bin, e, "agent-a")
	cartDPA(t, e, ns, map[string]string{v1alpha2.ForceReplicasAnnotation: "2"})
	dpas := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns)
	replicas := func() int32 {
		dep, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, "cart", metav1.GetOptions{})
		require.NoError(t, err)
		return *dep.Spec.Replicas
	}
	require.Eventually(t, func() bool { return replicas() == 2 }, testenv.WaitFor, 100*time.Millisecond, "the leader never scaled; logs:\n%s", logs)

	// Taken over by hand: another holder, renewed now, for an hour.
	leases := e.Kube.CoordinationV1().Leases("lazyscale")
	lease, err := leases.Get(ctx, "lazyscale-leader", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "agent-a", *lease.Spec.HolderIdentity)
	now := metav1.NewMicroTime(time.Now())
	lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds = testenv.Ptr("intruder"), testenv.Ptr(int32(3600))
	lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
	taken := time.Now()
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	require.NoError(t, err)

	// One second later, a change a leader would act on. By then a replica that reads the Lease
	// every retry period (500 ms) knows it lost it; client-go alone would still lead until its
	// renew deadline (3 s) and scale. The pause places the change inside that window: it is the
	// fault's timing, not a wait for a condition.
	time.Sleep(time.Until(taken.Add(time.Second)))
	_, err = dpas.Patch(ctx, "cart", types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+v1alpha2.ForceReplicasAnnotation+`":"3"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := getStatus(addr)
		return err == nil && !st.Leader.Leader
	}, testenv.WaitFor, 20*time.Millisecond, "the agent never stepped down; logs:\n%s", logs)
	assert.Never(t, func() bool { return replicas() != 2 }, 5*time.Second, 100*time.Millisecond, "scaled after losing the Lease")
	// When it stepped down: its own log line's time.
	var steppedDown time.Duration
	for _, line := range strings.Split(logs.String(), "\n") {
		var entry struct {
			TS  time.Time `json:"ts"`
			Msg string    `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && strings.HasPrefix(entry.Msg, "lost the Lease while leading") {
			steppedDown = entry.TS.Sub(taken)
			break
		}
	}
	require.NotZero(t, steppedDown, "the agent never logged that it lost the Lease; logs:\n%s", logs)
	// The retry period is 500 ms: a write received later than that after the takeover was made
	// by a replica that knew, or should have known, it no longer led.
	late := writesAfter(e, taken.Add(500*time.Millisecond))
	assert.Empty(t, late, "writes after the takeover; logs:\n%s", logs)
	all := writesAfter(e, taken)
	accepted := slices.DeleteFunc(slices.Clone(all), func(w write) bool { return !w.accepted() })
	lease, err = leases.Get(ctx, "lazyscale-leader", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "intruder", *lease.Spec.HolderIdentity, "the agent fought for the Lease")

	t.Logf("stepped down %s after the takeover; writes after it: %v", steppedDown, all)
	record(t, FaultRecord{
		Case: "the Lease taken over by hand while the agent leads", Lost: "nothing",
		Repeated: fmt.Sprintf("nothing: %d write requests after the takeover (%d accepted), none later than the 500 ms retry period", len(all), len(accepted)),
		Figures:  map[string]float64{"stepped down after (s)": steppedDown.Seconds(), "writes accepted after the takeover": float64(len(accepted))},
		Notes:    "lease 4 s, renew deadline 3 s, retry 500 ms; a scale asked for after the takeover is not made",
		Command:  "go test ./test/e2e -run TestFaultLeaseTakenWhileLeading -v",
	})
}

// The agent gets SIGTERM at the moment the apiserver gets its own (a control-plane upgrade and a
// rollout of lazyscale at once): it exits well within a pod's 30 s grace period, its Lease
// release and webhook drain bounded, and leaves nothing half-written: once the apiserver is
// back, a new agent takes over and patches new pods.
func TestFaultShutdownWithTheAPIServer(t *testing.T) {
	bin, e, ns := faultCluster(t, 1)
	ctx := context.Background()
	agent, addr, logs := oneAgent(t, bin, e, "agent-a")
	cartDPA(t, e, ns, map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`})
	require.Eventually(t, func() bool {
		st, err := getStatus(addr)
		return err == nil && st.Leader.Leader && st.Webhook != nil && st.Webhook.PatcherInstalled
	}, testenv.WaitFor, 100*time.Millisecond, "the agent never led with its patcher; logs:\n%s", logs)

	require.NoError(t, e.CP.StopAPIServer())
	require.NoError(t, agent.Process.Signal(syscall.SIGTERM))
	signalled := time.Now()
	require.Eventually(t, func() bool { return agent.Process.Signal(syscall.Signal(0)) != nil }, 30*time.Second, 20*time.Millisecond,
		"the agent did not exit within a pod's grace period; logs:\n%s", logs)
	exitedIn := time.Since(signalled)
	assert.Less(t, exitedIn, 15*time.Second, "well within the 30 s grace period")
	// The apiserver's own graceful shutdown (draining its watches) may take a minute more; the
	// case is about the agent's, so it is cut short.
	require.NoError(t, e.CP.KillAPIServer())
	require.NoError(t, e.CP.RestartAPIServer(ctx))

	// Nothing half-written: a new agent finds a Lease it can take (released, or expiring) and a
	// webhook configuration it can use, and patches the next pod.
	_, addr2, logs2 := oneAgent(t, bin, e, "agent-b")
	require.Eventually(t, func() bool {
		st, err := getStatus(addr2)
		return err == nil && st.Leader.Leader && st.Webhook != nil && st.Webhook.PatcherInstalled
	}, testenv.WaitFor, 100*time.Millisecond, "the new agent never took over; logs:\n%s", logs2)
	_, err := e.Kube.AppsV1().Deployments(ns).Patch(ctx, "cart", types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		pods := e.RunningPods(ns, "cart")
		return len(pods) == 2 && !slices.ContainsFunc(pods, func(p corev1.Pod) bool {
			return p.Spec.Containers[0].Resources.Requests.Cpu().String() != "300m"
		})
	}, testenv.WaitFor, 200*time.Millisecond, "the new agent did not patch; logs:\n%s", logs2)
	t.Logf("the agent exited %s after SIGTERM", exitedIn)
	record(t, FaultRecord{
		Case: "SIGTERM to the agent and to kube-apiserver at once", Lost: "nothing: a new agent takes over and patches the next pods",
		Repeated: "nothing", Figures: map[string]float64{"agent exit after SIGTERM (s)": exitedIn.Seconds()},
		Command: "go test ./test/e2e -run TestFaultShutdownWithTheAPIServer -v",
	})
}

// The agent is frozen (SIGSTOP) while pods come and go, kube-apiserver restarts (its watch cache
// starts again from etcd) and etcd compacts past every resourceVersion the agent knows; then it
// is resumed. Its watch cannot resume from where it was: it must list again, and its store must
// converge exactly, with no deleted pod kept and no pod missing.
func TestFaultWatchBehindCompaction(t *testing.T) {
	bin := buildBinary(t)
	e := testenv.NewEnvWith(t, controlplane.Options{InstallCRDs: true, APIServerFlags: []string{"--etcd-compaction-interval=2s"}})
	ns := e.Namespace("shop", nil)
	ctx := context.Background()
	e.CreatePods(ns, "cart", 100)
	agent, addr, logs := oneAgent(t, bin, e, "agent-a", "LAZYSCALE_STATUS_PPROF=true")
	e.CreateDPA(ns, "cart", "cart")
	converged := func() bool {
		held, err := heldPods(addr)
		if err != nil {
			return false
		}
		want, err := apiserverPods(ctx, e, ns)
		return err == nil && slices.Equal(held, want)
	}
	require.Eventually(t, converged, testenv.WaitFor, 100*time.Millisecond, "the store never held the namespace's pods; logs:\n%s", logs)
	list, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	known := list.ResourceVersion // the agent knows no later resourceVersion than this

	require.NoError(t, agent.Process.Signal(syscall.SIGSTOP))
	frozen := true
	defer func() {
		if frozen {
			_ = agent.Process.Signal(syscall.SIGCONT)
		}
	}()
	// Pods come and go: 50 of the first deleted, 80 new ones.
	for i := range 50 {
		require.NoError(t, e.Kube.CoreV1().Pods(ns).Delete(ctx, fmt.Sprintf("cart-7c9d8f6b5-%05d", i), metav1.DeleteOptions{GracePeriodSeconds: testenv.Ptr(int64(0))}))
	}
	e.CreatePods(ns, "web", 80)
	require.NoError(t, e.CP.KillAPIServer())
	require.NoError(t, e.CP.RestartAPIServer(ctx))
	// Compacted past it: a watch from that resourceVersion is refused as too old.
	require.Eventually(t, func() bool {
		w, err := e.Kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: known})
		if err != nil {
			return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
		}
		defer w.Stop()
		select {
		case ev := <-w.ResultChan():
			st, ok := ev.Object.(*metav1.Status)
			return ok && st.Code == http.StatusGone
		case <-time.After(2 * time.Second):
			return false
		}
	}, time.Minute, 500*time.Millisecond, "etcd never compacted past resourceVersion %s", known)

	require.NoError(t, agent.Process.Signal(syscall.SIGCONT))
	frozen = false
	resumed := time.Now()
	require.Eventually(t, converged, testenv.WaitFor, 50*time.Millisecond, "the store never converged after the resume; logs:\n%s", logs)
	convergedIn := time.Since(resumed)
	held, err := heldPods(addr)
	require.NoError(t, err)
	assert.Len(t, held, 130, "50 of the first 100 left, 80 new")
	t.Logf("converged %s after the resume", convergedIn)
	record(t, FaultRecord{
		Case: "the agent frozen (SIGSTOP) while 50 pods are deleted and 80 created, kube-apiserver restarts and etcd compacts past its resourceVersion",
		Lost: "nothing: the store equals the apiserver's 130 pods (none deleted kept, none missing)", Repeated: "nothing",
		Figures: map[string]float64{"store converged after the resume (s)": convergedIn.Seconds()},
		Command: "go test ./test/e2e -run TestFaultWatchBehindCompaction -v",
	})
}

// The Lease is deleted by hand while the agent leads: the agent ends its term at once (it cannot
// know who holds the Lease now), stands for election again, takes the Lease in a new term, and
// goes on acting: a scale its DPA asks for afterwards is made, once.
func TestFaultLeaseDeletedWhileLeading(t *testing.T) {
	bin, e, ns := faultCluster(t, 1)
	ctx := context.Background()
	_, addr, logs := oneAgent(t, bin, e, "agent-a")
	cartDPA(t, e, ns, map[string]string{v1alpha2.ForceReplicasAnnotation: "2"})
	replicas := func() int32 {
		dep, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, "cart", metav1.GetOptions{})
		require.NoError(t, err)
		return *dep.Spec.Replicas
	}
	require.Eventually(t, func() bool { return replicas() == 2 }, testenv.WaitFor, 100*time.Millisecond, "the leader never scaled; logs:\n%s", logs)
	st, err := getStatus(addr)
	require.NoError(t, err)
	terms := st.Leader.Transitions

	deleted := time.Now()
	require.NoError(t, e.Kube.CoordinationV1().Leases("lazyscale").Delete(ctx, "lazyscale-leader", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		st, err := getStatus(addr)
		return err == nil && st.Leader.Leader && st.Leader.Transitions > terms
	}, testenv.WaitFor, 20*time.Millisecond, "the agent never led again in a new term; logs:\n%s", logs)
	again := time.Since(deleted)
	assert.Contains(t, logs.String(), "the Lease was deleted")
	assert.Equal(t, "agent-a", leaseHolder(e))

	scaled := writesAfter(e, deleted)
	_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Patch(ctx, "cart", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"`+v1alpha2.ForceReplicasAnnotation+`":"3"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return replicas() == 3 }, testenv.WaitFor, 100*time.Millisecond, "the new term never scaled; logs:\n%s", logs)
	scales := 0
	for _, w := range writesAfter(e, deleted) {
		if strings.Contains(w.URI, "/deployments/cart/scale") && w.accepted() {
			scales++
		}
	}
	assert.Equal(t, 1, scales, "one scale for one change; writes: %v", writesAfter(e, deleted))
	t.Logf("led again %s after the deletion; writes before the change: %v", again, scaled)
	record(t, FaultRecord{
		Case: "the Lease deleted by hand while the agent leads", Lost: "nothing: a scale asked for afterwards is made",
		Repeated: "nothing: one scale for one change", Figures: map[string]float64{"leading again, in a new term, after (s)": again.Seconds()},
		Notes:   "the term ends at once and a new one begins with the Lease created again",
		Command: "go test ./test/e2e -run TestFaultLeaseDeletedWhileLeading -v",
	})
}

// dpaCondition reads one condition of DPA ns/name (nil when absent).
func dpaCondition(t *testing.T, e *testenv.Env, ns, name, condition string) *v1alpha2.DatadogPodAutoscalerCondition {
	t.Helper()
	return v1alpha2.FindCondition(getDPA(t, e, ns, name).Status.Conditions, condition)
}

// External recommenders that hang, are slow, or answer garbage, next to a healthy one. The
// calls run outside the reconcile workers (at most 4 in flight per endpoint, one per DPA): the
// healthy DPA's change is acted on as fast with the bad ones as without them, the hanging
// endpoint never holds more than its bound, the slow answer is acted on when it comes, and the
// garbage is a condition that says so.
func TestFaultExternalRecommenders(t *testing.T) {
	const hanging, perEndpoint, slowFor = 8, 4, 3 * time.Second
	bin, e, ns := faultCluster(t, 1)
	ctx := context.Background()
	var healthyReplicas atomic.Int32
	healthyReplicas.Store(2)
	var hangingNow, hangingCalls atomic.Int32
	var arrivalsMu sync.Mutex
	var hangArrivals []time.Time
	// One server per recommender: the bound per endpoint counts a host, as a Service is one.
	servers := map[string]*httptest.Server{}
	for _, kind := range []string{"healthy", "instant", "hang", "slow", "garbage"} {
		servers[kind] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			switch kind {
			case "healthy":
				_, _ = fmt.Fprintf(w, `{"replicas": %d}`, healthyReplicas.Load())
			case "instant":
				_, _ = io.WriteString(w, `{"replicas": 1}`)
			case "hang": // until the agent's client gives up (its timeout) or the test ends
				arrivalsMu.Lock()
				hangArrivals = append(hangArrivals, time.Now())
				arrivalsMu.Unlock()
				hangingCalls.Add(1)
				hangingNow.Add(1)
				<-r.Context().Done()
				hangingNow.Add(-1)
			case "slow":
				time.Sleep(slowFor) // the recommender's own slowness, not a synchronisation
				_, _ = io.WriteString(w, `{"replicas": 2}`)
			case "garbage":
				_, _ = io.WriteString(w, "<html>502 Bad Gateway</html>")
			}
		}))
		t.Cleanup(servers[kind].Close)
	}
	recommender := func(kind string, settings int) map[string]string {
		return map[string]string{v1alpha2.CustomRecommenderAnnotation: fmt.Sprintf(`{"endpoint": %q, "settings": {"v": %d}}`, servers[kind].URL, settings)}
	}
	workload := func(name string, annotations map[string]string) {
		d := testenv.Deployment(ns, name, nil)
		d.Spec.Replicas = testenv.Ptr(int32(1))
		_, err := e.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		dpa := testenv.DPA(ns, name, name)
		require.NoError(t, unstructured.SetNestedMap(dpa.Object, map[string]any{"minReplicas": int64(1), "maxReplicas": int64(10)}, "spec", "constraints"))
		dpa.SetAnnotations(annotations)
		_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Create(ctx, dpa, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	replicas := func(name string) int32 {
		dep, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return *dep.Spec.Replicas
	}
	// healthyChange asks the healthy recommender for n replicas (a new settings value: a new
	// input, asked at once) and returns how long until the Deployment says n.
	healthyChange := func(n int32) time.Duration {
		healthyReplicas.Store(n)
		began := time.Now()
		_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Patch(ctx, "cart", types.MergePatchType,
			[]byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha2.CustomRecommenderAnnotation,
				recommender("healthy", int(n))[v1alpha2.CustomRecommenderAnnotation])), metav1.PatchOptions{})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return replicas("cart") == n }, testenv.WaitFor, 20*time.Millisecond)
		return time.Since(began)
	}

	// reconciled waits until every DPA named has a HorizontalAbleToRecommend condition.
	reconciled := func(names []string, reason string) {
		require.Eventually(t, func() bool {
			for _, name := range names {
				if c := dpaCondition(t, e, ns, name, v1alpha2.ConditionHorizontalAbleToRecommend); c == nil || (reason != "" && c.Reason != reason) {
					return false
				}
			}
			return true
		}, testenv.WaitFor, 100*time.Millisecond, "%v not all reconciled (%s)", names, reason)
	}

	// Without the local recommender, nothing stands in for the external values.
	_, _, logs := oneAgent(t, bin, e, "agent-a", "LAZYSCALE_AUTOSCALING_WORKLOAD_EXTERNAL_RECOMMENDER_ALLOWED_ENDPOINTS=127.0.0.0/8", "LAZYSCALE_AUTOSCALING_WORKLOAD_EXTERNAL_RECOMMENDER_MAX_IN_FLIGHT_PER_ENDPOINT="+strconv.Itoa(perEndpoint),
		"LAZYSCALE_AUTOSCALING_WORKLOAD_LOCAL_RECOMMENDER_ENABLED=false")
	cartDPA(t, e, ns, recommender("healthy", 0))
	require.Eventually(t, func() bool { return replicas("cart") == 2 }, testenv.WaitFor, 50*time.Millisecond, "never scaled; logs:\n%s", logs)
	alone := healthyChange(3)

	// The control: as many new DPAs as the faulty ones below, on a recommender that answers at
	// once (the current count: nothing to scale). Their first reconciles and the client's rate
	// limit delay the healthy DPA's change; that much is not the recommenders' doing.
	var control []string
	for i := range hanging + 2 {
		control = append(control, fmt.Sprintf("control-%d", i))
		workload(control[i], recommender("instant", i))
	}
	reconciled(control, "RecommendationReceived")
	withNew := healthyChange(4)

	bad := []string{"slow", "garbage"}
	for i := range hanging {
		bad = append(bad, fmt.Sprintf("hang-%d", i))
		workload(bad[len(bad)-1], recommender("hang", i))
	}
	workload("slow", recommender("slow", 0))
	workload("garbage", recommender("garbage", 0))
	slowAsked := time.Now()
	// Every hanging DPA was reconciled: those over the bound wait their turn, none holds a worker.
	reconciled(bad[2:], "RecommendationPending")
	reconciled(bad[:2], "")
	require.Equal(t, int32(perEndpoint), hangingNow.Load())
	withBad := healthyChange(5)

	// The slow answer is acted on when it comes; the garbage is an error that says so.
	require.Eventually(t, func() bool { return replicas("slow") == 2 }, testenv.WaitFor, 50*time.Millisecond, "the slow answer was not acted on; logs:\n%s", logs)
	slowActed := time.Since(slowAsked)
	c := dpaCondition(t, e, ns, "garbage", v1alpha2.ConditionHorizontalAbleToRecommend)
	require.NotNil(t, c)
	assert.Equal(t, "RecommendationFailed", c.Reason)
	assert.Contains(t, c.Message, "answer is not a recommendation")
	assert.Equal(t, int32(1), replicas("garbage"))
	// Settled, with the hanging calls still in flight: a change is as fast as alone.
	require.Equal(t, int32(perEndpoint), hangingNow.Load(), "the hanging calls ended before the settled measurement")
	settled := healthyChange(6)

	// The hanging calls time out (10 s): the queued ones start, never more than the bound.
	require.Eventually(t, func() bool { return hangingCalls.Load() >= hanging }, 2*testenv.WaitFor, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		c = dpaCondition(t, e, ns, "hang-0", v1alpha2.ConditionHorizontalAbleToRecommend)
		return c.Reason == "RecommendationFailed" && strings.Contains(c.Message, "Client.Timeout")
	}, testenv.WaitFor, 100*time.Millisecond, "the first hanging call's timeout is not in the condition: %+v", c)
	// Before the first hanging call times out (10 s), exactly the bound reached the endpoint.
	// (Counting at the server after that would include the moment it takes to notice a client
	// that gave up.)
	arrivalsMu.Lock()
	beforeTimeout := 0
	for _, at := range hangArrivals {
		if at.Sub(hangArrivals[0]) < 9*time.Second {
			beforeTimeout++
		}
	}
	arrivalsMu.Unlock()
	assert.Equal(t, perEndpoint, beforeTimeout, "calls to the hanging endpoint before the first timed out")
	assert.Equal(t, int32(1), replicas("hang-0"))
	// Before this design, 2 workers each held 10 s by a hanging call delayed the change by
	// tens of seconds; now the bad recommenders add no more than the control's new DPAs.
	assert.Less(t, withBad, withNew+2*time.Second, "the healthy DPA waited for the bad recommenders")
	assert.Less(t, settled, 2*time.Second, "a change while the hanging calls are in flight")
	t.Logf("healthy change acted on: alone %s, after %d new DPAs %s, after %d faulty DPAs %s, settled with %d hanging calls %s; slow answer acted on after %s; hanging calls before the first timeout %d",
		alone, len(control), withNew, len(bad), withBad, perEndpoint, settled, slowActed, beforeTimeout)
	record(t, FaultRecord{
		Case: fmt.Sprintf("external recommenders: %d DPAs on one that hangs, one slow (%s), one answering garbage, next to a healthy one", hanging, slowFor),
		Lost: "nothing: the healthy DPA's changes are acted on as fast as next to as many healthy DPAs; the slow answer when it comes", Repeated: "nothing",
		Figures: map[string]float64{
			"healthy change acted on, alone (s)":                            alone.Seconds(),
			"healthy change acted on, after 10 new healthy DPAs (s)":        withNew.Seconds(),
			"healthy change acted on, after the 10 faulty DPAs (s)":         withBad.Seconds(),
			"healthy change acted on, settled, hanging calls in flight (s)": settled.Seconds(),
			"slow answer acted on after (s)":                                slowActed.Seconds(),
			"calls to the hanging endpoint before the first timed out":      float64(beforeTimeout),
		},
		Notes:   fmt.Sprintf("calls run outside the 2 reconcile workers: at most %d in flight per endpoint (max_in_flight_per_endpoint) and one per DPA; a reconcile waits at most answer_wait (500 ms) for the call it starts; the garbage is RecommendationFailed, the hanging ones RecommendationPending, then RecommendationFailed at the client's timeout (10 s)", perEndpoint),
		Command: "go test ./test/e2e -run TestFaultExternalRecommenders -v",
	})
}
