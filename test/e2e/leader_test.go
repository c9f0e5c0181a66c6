package e2e

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// startAgent runs the binary with a fast leader election under identity and returns its
// status address; the process is killed at cleanup if still running.
func startAgent(t *testing.T, bin string, e *testenv.Env, identity string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	port := strconv.Itoa(testenv.FreePort(t))
	var logs syncBuffer
	cmd := exec.Command(bin, "--kubeconfig", e.CP.Kubeconfig, "--status-addr", addr, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "LAZYSCALE_ADMISSION_BIND_ADDRESS=127.0.0.1", "LAZYSCALE_ADMISSION_PORT="+port,
		"LAZYSCALE_ADMISSION_URL=https://127.0.0.1:"+port, "LAZYSCALE_LEADER_ELECTION_IDENTITY="+identity,
		"LAZYSCALE_LEADER_ELECTION_LEASE_DURATION=4s", "LAZYSCALE_LEADER_ELECTION_RENEW_DEADLINE=3s",
		"LAZYSCALE_LEADER_ELECTION_RETRY_PERIOD=500ms")
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

// The leader is killed without a chance to release its lease (SIGKILL): the follower takes
// over once the lease expires, within the lease duration and a retry, and does not roll the
// workload out a second time.
func TestLeaderKilledFollowerTakesOver(t *testing.T) {
	bin := buildBinary(t)
	e := testenv.NewEnv(t, true)
	e.Namespace("shop", nil)
	ctx := context.Background()
	d := testenv.Deployment("shop", "cart", nil)
	_, err := e.Kube.AppsV1().Deployments("shop").Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	e.CreatePods("shop", "cart", 3)
	dpa := testenv.DPA("shop", "cart", "cart")
	dpa.SetAnnotations(map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`})
	_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Create(ctx, dpa, metav1.CreateOptions{})
	require.NoError(t, err)

	leader, _, leaderLogs := startAgent(t, bin, e, "agent-a")
	require.Eventually(t, func() bool { return leaseHolder(e) == "agent-a" }, testenv.WaitFor, 100*time.Millisecond, "logs:\n%s", leaderLogs)
	rolledOut := func() bool {
		dep, err := e.Kube.AppsV1().Deployments("shop").Get(ctx, "cart", metav1.GetOptions{})
		require.NoError(t, err)
		return dep.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation] != ""
	}
	require.Eventually(t, rolledOut, testenv.WaitFor, 100*time.Millisecond, "the leader never rolled out; logs:\n%s", leaderLogs)

	_, followerAddr, followerLogs := startAgent(t, bin, e, "agent-b")
	require.Eventually(t, func() bool {
		d, err := getStatus(followerAddr)
		return err == nil && d.Autoscaling.State == "running" && d.Leader.Campaigning && d.Leader.Holder == "agent-a"
	}, testenv.WaitFor, 100*time.Millisecond, "the follower never stood for election; logs:\n%s", followerLogs)

	require.NoError(t, leader.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	assert.Equal(t, "agent-a", leaseHolder(e), "a killed leader cannot release its lease")
	require.Eventually(t, func() bool { return leaseHolder(e) == "agent-b" }, testenv.WaitFor, 50*time.Millisecond, "logs:\n%s", followerLogs)
	took := time.Since(killed)
	t.Logf("takeover after SIGKILL: %s (lease duration 4s, retry period 500ms)", took.Round(time.Millisecond))
	assert.Less(t, took, 4*time.Second+2*time.Second, "takeover slower than the lease duration plus a retry")
	require.Eventually(t, func() bool { d, err := getStatus(followerAddr); return err == nil && d.Leader.Leader }, testenv.WaitFor, 100*time.Millisecond)

	// The new leader reconciles the DPA (it does: its status condition is refreshed) but does
	// not roll out again within the rollout interval.
	assert.Never(t, func() bool { return len(e.LazyscaleRequests("deployments", "patch")) > 1 }, 3*time.Second, 200*time.Millisecond, "rolled out twice")
	assert.Len(t, e.LazyscaleRequests("deployments", "patch"), 1)
	events, err := e.Kube.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "reason=SuccessfulTriggerRollout"})
	require.NoError(t, err)
	assert.Len(t, events.Items, 1)
}
