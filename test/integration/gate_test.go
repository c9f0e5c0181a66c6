package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// TestGateClosesAndReopens: with a short idle_grace the gate closes once the last DPA is gone
// (the stack stops, the pods are released, the webhook entry is removed) and the next DPA
// opens a new term in which everything works again: the controller acts, the webhook patches,
// /status tells the truth. With nothing left to write once a term has closed, the replica
// gives its Lease up. Three terms; nothing started in one outlives it.
func TestGateClosesAndReopens(t *testing.T) {
	e := newClusterEnv(t)
	ctx := context.Background()
	shop := e.Namespace("shop", nil)
	e.runningDeployment(shop, "web", 1)
	a := e.startAgent(map[string]string{"autoscaling.workload.idle_grace": "2s"})
	e.waitTriggerWatches(a)

	var afterFirst goleak.Option
	for term := uint64(1); term <= 3; term++ {
		cpu := fmt.Sprintf("%dm", 200+100*term)
		e.dpa(shop, "web", "web", map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "` + cpu + `"}}]`}, rolloutOnly)

		// What a user sees: the pods run with this term's recommendation, patched by the
		// webhook in a rollout the controller triggered.
		version := e.waitVerticalTarget(shop, "web").Version
		e.waitPodsRunWith(shop, "web", 1, hasResources("app", version, cpu, "128Mi", "256Mi"))
		d := a.statusDoc()
		require.True(t, d.Gate.Open, "term %d", term)
		assert.Equal(t, term, d.Gate.Term)
		assert.Equal(t, "running", string(d.Autoscaling.State))
		assert.Equal(t, wmdef.StateSynced, d.PodCollection.State)
		require.Eventually(t, func() bool { return slices.Equal(a.heldPods(), e.apiserverPods([]string{shop})) }, waitFor, 50*time.Millisecond,
			"term %d: the store holds the pods of the DPA's namespace", term)
		assert.True(t, d.Webhook.PatcherInstalled)
		assert.Equal(t, fmt.Sprint(term), a.metric("lazyscale_autoscaling_gate_term"))

		// The last trigger goes: the countdown shows, then the gate closes.
		require.NoError(t, e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(shop).Delete(ctx, "web", metav1.DeleteOptions{}))
		require.Eventually(t, func() bool { return !a.statusDoc().Gate.ClosesAt.IsZero() || !a.gate.IsOpen() }, waitFor, 20*time.Millisecond,
			"term %d: no countdown once the DPA went", term)
		require.Eventually(t, func() bool { g := a.statusDoc().Gate; return !g.Open && !g.Closing }, waitFor, 50*time.Millisecond,
			"term %d: the gate never closed", term)
		d = a.statusDoc()
		assert.Equal(t, term, d.Gate.Term)
		assert.False(t, d.Gate.ClosedAt.IsZero())
		require.Eventually(t, func() bool { return a.statusDoc().PodCollection.State == wmdef.StateDormant }, waitFor, 50*time.Millisecond)
		d = a.statusDoc()
		assert.Equal(t, 0, d.PodCollection.Pods, "term %d: the pods are released", term)
		assert.Equal(t, 0, a.wm.Count(wmdef.KindPod))
		assert.Equal(t, "waiting_for_gate", string(d.Autoscaling.State))
		assert.False(t, d.Webhook.PatcherInstalled)
		assert.Equal(t, "0", a.metric("lazyscale_autoscaling_gate_open"))
		require.Eventually(t, func() bool { return e.autoscalingEntry() == nil }, waitFor, 100*time.Millisecond,
			"term %d: the webhook entry was not removed", term)
		// Nothing is left to write: the replica gives its Lease up.
		require.Eventually(t, func() bool { l := a.statusDoc().Leader; return !l.Campaigning && !l.Leader }, waitFor, 100*time.Millisecond,
			"term %d: still standing for election with nothing to write", term)
		// The elector writes the release after the term has ended: wait for it.
		require.Eventually(t, func() bool { return e.leaseHolder() == "" }, waitFor, 50*time.Millisecond,
			"term %d: the Lease was not released (holder %q)", term, e.leaseHolder())
		if term == 1 {
			// What runs once the first term has come and gone (the leader election the first
			// term started, the connections) is the baseline the next terms must come back to.
			afterFirst = goleak.IgnoreCurrent()
		}
	}
	goleak.VerifyNone(t, afterFirst,
		// The apiserver keeps connections to the webhook's server open between calls.
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}
