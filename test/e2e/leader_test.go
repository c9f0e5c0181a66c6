package e2e

import (
	"context"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// service stands for the webhook's Service in front of the agents' admission ports: each
// connection goes to the next backend that accepts it, as kube-proxy sends it to a ready
// endpoint. A killed agent's port refuses connections, so the survivor gets them all.
type service struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint32
	wg       sync.WaitGroup
}

func newService(t *testing.T, backends ...string) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &service{ln: ln, backends: backends}
	s.wg.Go(s.serve)
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *service) port() string { return strconv.Itoa(s.ln.Addr().(*net.TCPAddr).Port) }

func (s *service) serve() {
	for {
		in, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.forward(in) })
	}
}

func (s *service) forward(in net.Conn) {
	defer in.Close()
	first := int(s.next.Add(1))
	for i := range s.backends {
		out, err := net.DialTimeout("tcp", s.backends[(first+i)%len(s.backends)], time.Second)
		if err != nil {
			continue
		}
		// Either side ending ends both: nothing here needs a half-closed connection.
		done := make(chan struct{})
		go func() { _, _ = io.Copy(out, in); _ = out.Close(); _ = in.Close(); close(done) }()
		_, _ = io.Copy(in, out)
		_ = in.Close()
		_ = out.Close()
		<-done
		return
	}
}

// startAgent runs the binary with a fast leader election under identity and returns its
// status address; the process is killed at cleanup if still running. Its admission server
// listens on port; the webhook it registers points at url.
func startAgent(t *testing.T, bin string, e *testenv.Env, identity, port, url string, env ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	var logs syncBuffer
	cmd := exec.Command(bin, "--kubeconfig", e.CP.Kubeconfig, "--status-addr", addr, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "LAZYSCALE_ADMISSION_BIND_ADDRESS=127.0.0.1", "LAZYSCALE_ADMISSION_PORT="+port,
		"LAZYSCALE_ADMISSION_URL="+url, "LAZYSCALE_LEADER_ELECTION_IDENTITY="+identity,
		"LAZYSCALE_LEADER_ELECTION_LEASE_DURATION=4s", "LAZYSCALE_LEADER_ELECTION_RENEW_DEADLINE=3s",
		"LAZYSCALE_LEADER_ELECTION_RETRY_PERIOD=500ms")
	cmd.Env = append(cmd.Env, env...)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return cmd, addr, &logs
}

func leaseHolder(e *testenv.Env) string {
	l, err := e.Kube.CoordinationV1().Leases("lazyscale").Get(context.Background(), "lazyscale-leader", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// The leader is killed (SIGKILL: no chance to release its lease) right after it triggered a
// rollout, while the Deployment controller is still replacing pods behind the webhook's
// Service. The rollout completes once: every pod of the new ReplicaSet was patched (by the
// survivor's webhook once the leader is gone), the follower takes over within the lease
// duration and a retry, and it does not roll out a second time.
func TestLeaderKilledMidRollout(t *testing.T) {
	const replicas = 6
	bin := buildBinary(t)
	e := testenv.NewEnvWith(t, controlplane.Options{InstallCRDs: true, Nodes: 2})
	ns := e.Namespace("shop", nil)
	ctx := context.Background()
	// One pod at a time, each Ready for 2 s before the next: the rollout takes over 12 s.
	d := testenv.Deployment(ns, "cart", nil)
	d.Spec.Replicas = testenv.Ptr(int32(replicas))
	d.Spec.MinReadySeconds = 2
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &one, MaxUnavailable: &zero}}
	_, err := e.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(e.RunningPods(ns, "cart")) == replicas }, testenv.WaitFor, 200*time.Millisecond)

	portA, portB := strconv.Itoa(testenv.FreePort(t)), strconv.Itoa(testenv.FreePort(t))
	svc := newService(t, "127.0.0.1:"+portA, "127.0.0.1:"+portB)
	url := "https://127.0.0.1:" + svc.port()
	leader, leaderAddr, leaderLogs := startAgent(t, bin, e, "agent-a", portA, url)
	require.Eventually(t, func() bool { return leaseHolder(e) == "agent-a" }, testenv.WaitFor, 100*time.Millisecond, "logs:\n%s", leaderLogs)
	_, followerAddr, followerLogs := startAgent(t, bin, e, "agent-b", portB, url)

	// A paused DPA opens both gates; both webhooks are ready to patch before anything rolls out.
	rolloutDPA(t, e, ns, "cart", "300m", map[string]string{v1alpha2.PauseAnnotation: "true"})
	readyToPatch(t, []string{leaderAddr, followerAddr}, leaderLogs, followerLogs)
	_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Patch(ctx, "cart", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"`+v1alpha2.PauseAnnotation+`":null}}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	var version string
	require.Eventually(t, func() bool {
		dep, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, "cart", metav1.GetOptions{})
		require.NoError(t, err)
		version = dep.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation]
		return version != ""
	}, testenv.WaitFor, 50*time.Millisecond, "the leader never rolled out; logs:\n%s", leaderLogs)
	require.NoError(t, leader.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	// The Deployment's status counts updated replicas against the template its controller
	// last observed: read right after the patch, it may still say 6 of 6 for the old one.
	var dep *appsv1.Deployment
	require.Eventually(t, func() bool {
		dep, err = e.Kube.AppsV1().Deployments(ns).Get(ctx, "cart", metav1.GetOptions{})
		require.NoError(t, err)
		return dep.Status.ObservedGeneration >= dep.Generation
	}, testenv.WaitFor, 20*time.Millisecond, "the Deployment controller never observed the rollout")
	assert.Less(t, dep.Status.UpdatedReplicas, int32(replicas), "the leader was killed mid-rollout")

	require.Eventually(t, func() bool { return leaseHolder(e) == "agent-b" }, testenv.WaitFor, 50*time.Millisecond, "logs:\n%s", followerLogs)
	took := time.Since(killed)
	t.Logf("takeover after SIGKILL mid-rollout: %s (lease duration 4s, retry period 500ms)", took.Round(time.Millisecond))
	assert.Less(t, took, 4*time.Second+2*time.Second, "takeover slower than the lease duration plus a retry")

	// What the user sees: every pod replaced, running with the recommendation.
	require.Eventually(t, func() bool {
		pods := e.RunningPods(ns, "cart")
		if len(pods) != replicas {
			return false
		}
		for _, p := range pods {
			if p.Annotations[v1alpha2.RecommendationIDAnnotation] != version || p.Spec.Containers[0].Resources.Requests.Cpu().String() != "300m" {
				return false
			}
		}
		return true
	}, testenv.WaitFor, 250*time.Millisecond, "the rollout never completed with every pod patched; logs:\n%s", followerLogs)
	// No pod of the new ReplicaSet went unpatched, even those created during the takeover.
	rsList, err := e.Kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, rsList.Items, 2, "one rollout: the old and the new ReplicaSet")

	// The new leader reconciles the DPA but does not roll out again.
	require.Eventually(t, func() bool { d, err := getStatus(followerAddr); return err == nil && d.Leader.Leader }, testenv.WaitFor, 100*time.Millisecond)
	assert.Never(t, func() bool { return len(e.LazyscaleRequests("deployments", "patch")) > 1 }, 3*time.Second, 200*time.Millisecond, "rolled out twice")
	assert.Len(t, e.LazyscaleRequests("deployments", "patch"), 1)
	events, err := e.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=SuccessfulTriggerRollout"})
	require.NoError(t, err)
	assert.Len(t, events.Items, 1)
}

// rolloutDPA creates DPA ns/name on Deployment name, forcing the app container's CPU request
// and rolling it out (TriggerRollout), with extra annotations.
func rolloutDPA(t *testing.T, e *testenv.Env, ns, name, cpu string, annotations map[string]string) {
	t.Helper()
	dpa := testenv.DPA(ns, name, name)
	require.NoError(t, unstructured.SetNestedField(dpa.Object, "TriggerRollout", "spec", "applyPolicy", "update", "strategy"))
	ann := map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "` + cpu + `"}}]`}
	maps.Copy(ann, annotations)
	dpa.SetAnnotations(ann)
	_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Create(context.Background(), dpa, metav1.CreateOptions{})
	require.NoError(t, err)
}

// readyToPatch waits until every agent runs its stack with the pod patcher installed.
func readyToPatch(t *testing.T, addrs []string, logs ...*syncBuffer) {
	t.Helper()
	for _, addr := range addrs {
		require.Eventually(t, func() bool {
			d, err := getStatus(addr)
			return err == nil && d.Autoscaling.State == "running" && d.Webhook != nil && d.Webhook.PatcherInstalled
		}, testenv.WaitFor, 100*time.Millisecond, "%s never ready to patch; logs:\n%v", addr, logs)
	}
}
