package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// quietWindow is how long a negative assertion ("nothing happened") watches for it to happen.
const quietWindow = 5 * time.Second

// waitTriggerWatches waits until the agent's trigger watches are established, as seen by the
// apiserver: from then on, anything the agent would do in reaction to the cluster is visible.
func (e *env) waitTriggerWatches(a *agent) {
	e.T.Helper()
	require.Eventually(e.T, func() bool {
		code, _ := a.get("/readyz")
		return code == http.StatusOK
	}, waitFor, 50*time.Millisecond, "agent never ready")
	for _, r := range []string{"datadogpodautoscalers", "deployments", "statefulsets", "namespaces"} {
		require.Eventually(e.T, func() bool { return len(e.LazyscaleRequests(r, "watch", "list")) > 0 },
			waitFor, 50*time.Millisecond, "no %s trigger watch", r)
	}
}

func TestDormantUntilDPA(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	e.CreatePods("shop", "cart", 200)

	a := e.startAgent(nil)
	e.waitTriggerWatches(a)

	// Things that are not triggers: an unlabelled Deployment, an excluded one, a profile alone.
	ctx := context.Background()
	_, err := e.Kube.AppsV1().Deployments("shop").Create(ctx, testenv.Deployment("shop", "cart", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.Kube.AppsV1().Deployments("shop").Create(ctx,
		testenv.Deployment("shop", "legacy", map[string]string{v1alpha2.ProfileLabel: v1alpha2.ProfileExcluded}), metav1.CreateOptions{})
	require.NoError(t, err)
	e.CreateProfile("default")

	assert.Never(t, func() bool {
		return len(e.LazyscaleRequests("pods")) > 0 || a.gate.IsOpen()
	}, quietWindow, 100*time.Millisecond, "dormant agent touched pods or opened the gate")
	assert.Empty(t, e.LazyscaleRequests("pods", "list", "watch"), "no pod LIST/WATCH in the audit log")
	assert.Equal(t, 0, a.wm.Count(wmdef.KindPod))
	doc := a.statusDoc()
	assert.False(t, doc.Gate.Open)
	assert.Equal(t, wmdef.StateDormant, doc.PodCollection.State)
	assert.Equal(t, 0, doc.PodCollection.Pods)
	assert.Equal(t, "0", a.metric("lazyscale_autoscaling_gate_open"))
	// Nothing of the autoscaling stack runs: no controller reads a workload, writes a status
	// or an event, and no patcher is installed.
	for _, r := range []string{"deployments", "statefulsets", "events", "replicasets"} {
		assert.Empty(t, e.LazyscaleRequests(r, "get", "patch", "update", "create"), "dormant agent touched %s", r)
	}
	assert.Empty(t, e.LazyscaleRequests("datadogpodautoscalers", "update", "patch"), "dormant agent wrote a DPA")
	assert.Equal(t, "waiting_for_gate", string(a.statusDoc().Autoscaling.State))
	assert.Equal(t, "1", a.metric(`lazyscale_autoscaling_stack_state{state="waiting_for_gate"}`))
	assert.False(t, a.webhook.PatcherInstalled())

	e.CreateDPA("shop", "cart", "cart")
	a.waitGate()
	a.waitState(wmdef.StateSynced)
	assert.Equal(t, 200, a.wm.Count(wmdef.KindPod))
	assert.True(t, a.gate.IsOpen())
	require.Eventually(t, func() bool { return a.statusDoc().PodCollection.State == "synced" }, waitFor, 50*time.Millisecond)

	doc = a.statusDoc()
	assert.True(t, doc.Gate.Open)
	require.NotNil(t, doc.Gate.Trigger)
	assert.Equal(t, "DatadogPodAutoscaler", doc.Gate.Trigger.Kind)
	assert.Equal(t, "shop", doc.Gate.Trigger.Namespace)
	assert.Equal(t, "cart", doc.Gate.Trigger.Name)
	assert.Equal(t, 200, doc.PodCollection.Pods)
	assert.Equal(t, "1", a.metric("lazyscale_autoscaling_gate_open"))
	assert.Equal(t, "200", a.metric(`lazyscale_workloadmeta_entities{kind="pod"}`))
	assert.Equal(t, "1", a.metric(`lazyscale_workloadmeta_collection_state{kind="pod",state="synced"}`))
	// The stack started after the pod collection synced, and its controller wrote the status.
	require.Eventually(t, func() bool { return string(a.statusDoc().Autoscaling.State) == "running" }, waitFor, 50*time.Millisecond)
	e.waitCondition("shop", "cart", v1alpha2.ConditionActive, metav1.ConditionTrue)

	// Pinned defaults: a namespace's pod collection pages through LIST then WATCHes, whatever
	// watch_list says (the apiserver would walk its whole cache for a namespace's streaming
	// list); the trigger watches LIST then WATCH.
	podLists := e.LazyscaleRequests("pods", "list")
	require.Len(t, podLists, 1, "one LIST of the namespace's 200 pods")
	assert.Contains(t, podLists[0].RequestURI, "/namespaces/shop/pods?")
	podWatches := e.LazyscaleRequests("pods", "watch")
	require.NotEmpty(t, podWatches)
	for _, w := range podWatches {
		assert.NotContains(t, w.RequestURI, "sendInitialEvents=true", "a namespace's collection does not stream")
	}
	for _, r := range []string{"datadogpodautoscalers", "deployments", "statefulsets", "namespaces"} {
		assert.NotEmpty(t, e.LazyscaleRequests(r, "list"), "%s trigger watch starts with a LIST", r)
		for _, w := range e.LazyscaleRequests(r, "watch") {
			if r != "datadogpodautoscalers" && !strings.Contains(w.RequestURI, "labelSelector=") {
				continue // a profile exists: the leader's profile controller watches all workloads
			}
			assert.NotContains(t, w.RequestURI, "sendInitialEvents=true", "trigger watches are pinned to LIST+WATCH")
		}

	}
	// The pod requests exclude terminal pods on the server.
	reqs := e.LazyscaleRequests("pods", "list", "watch")
	require.NotEmpty(t, reqs)
	for _, r := range reqs {
		assert.Contains(t, r.RequestURI, "fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed", r.RequestURI)
	}

	// The slim entity: owner resolved to the Deployment, the rec-id annotation kept.
	var pod *wmdef.Pod
	for _, ent := range a.wm.List(wmdef.KindPod) {
		pod = ent.(*wmdef.Pod)
		break
	}
	require.NotNil(t, pod)
	assert.Equal(t, wmdef.Owner{Kind: "Deployment", Name: "cart"}, pod.Owner)
	assert.Equal(t, "r1", pod.RecID)
	assert.Empty(t, pod.AutoscalerID)
	assert.True(t, pod.Ready)
	assert.Equal(t, "Running", pod.Phase)
	require.Len(t, pod.Containers, 2)
}

func TestProfileLabelsOpenTheGate(t *testing.T) {
	tests := []struct {
		name   string
		create func(e *env)
		want   string
	}{
		{"labelled deployment", func(e *env) {
			_, err := e.Kube.AppsV1().Deployments("shop").Create(context.Background(),
				testenv.Deployment("shop", "cart", map[string]string{v1alpha2.ProfileLabel: "default"}), metav1.CreateOptions{})
			require.NoError(e.T, err)
		}, "Deployment"},
		{"labelled statefulset", func(e *env) {
			_, err := e.Kube.AppsV1().StatefulSets("shop").Create(context.Background(),
				testenv.StatefulSet("shop", "db", map[string]string{v1alpha2.ProfileLabel: "default"}), metav1.CreateOptions{})
			require.NoError(e.T, err)
		}, "StatefulSet"},
		{"labelled namespace", func(e *env) {
			e.Namespace("team-a", map[string]string{v1alpha2.ProfileLabel: "default"})
		}, "Namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, true)
			e.Namespace("shop", nil)
			e.CreatePods("shop", "cart", 20)
			a := e.startAgent(nil)
			e.waitTriggerWatches(a)
			require.False(t, a.gate.IsOpen())

			tt.create(e)
			a.waitGate()
			a.waitState(wmdef.StateSynced)
			assert.Equal(t, tt.want, a.gate.Status().Trigger.Kind)
			// The profile "default" does not exist: no DPA is generated, so no namespace
			// holds one and no pod is collected (the pods are wanted once a DPA exists).
			assert.Never(t, func() bool { return a.wm.Count(wmdef.KindPod) > 0 }, quietWindow, 100*time.Millisecond)
			assert.Empty(t, e.LazyscaleRequests("pods", "list", "watch"), "no pod LIST/WATCH without a DPA")
		})
	}
}

func TestMissingCRDThenInstalled(t *testing.T) {
	e := newEnv(t, false)
	e.Namespace("shop", nil)
	e.CreatePods("shop", "cart", 10)
	a := e.startAgent(nil)

	// Ready although the DPA resource is not served: a cluster without the CRD is healthy.
	require.Eventually(t, func() bool { code, _ := a.get("/readyz"); return code == http.StatusOK },
		waitFor, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		for _, r := range e.LazyscaleRequests("datadogpodautoscalers") {
			if r.ResponseStatus != nil && r.ResponseStatus.Code == http.StatusNotFound {
				return true
			}
		}
		return false
	}, waitFor, 50*time.Millisecond, "the DPA watch never tried the missing resource")
	assert.False(t, a.gate.IsOpen())
	assert.Empty(t, e.LazyscaleRequests("pods"))

	e.InstallCRDs()
	e.CreateDPA("shop", "cart", "cart")
	// The reflector's backoff caps at 30s between retries.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	require.True(t, a.gate.Wait(ctx), "gate never opened after the CRD and a DPA appeared")
	a.waitState(wmdef.StateSynced)
	assert.Equal(t, 10, a.wm.Count(wmdef.KindPod))
}

func TestCollectionModes(t *testing.T) {
	t.Run("eager collects at startup without a DPA", func(t *testing.T) {
		e := newEnv(t, true)
		e.Namespace("shop", nil)
		e.CreatePods("shop", "cart", 50)
		a := e.startAgent(map[string]string{"workloadmeta.pods.collection": "eager"})
		a.waitState(wmdef.StateSynced)
		assert.Equal(t, 50, a.wm.Count(wmdef.KindPod))
		assert.False(t, a.gate.IsOpen(), "eager collection does not open the gate")
		assert.False(t, a.statusDoc().PodCollection.SyncedAt.IsZero(), "eager collection reports its sync")
		assert.Equal(t, wmdef.ModeEager, a.statusDoc().PodCollection.Mode)
		assert.Eventually(t, func() bool { code, _ := a.get("/readyz"); return code == http.StatusOK }, waitFor, 50*time.Millisecond)
		// Cluster-wide, watch_list=true (the default) streams the initial sync: one WATCH, no LIST.
		assert.Empty(t, e.LazyscaleRequests("pods", "list"))
		watches := e.LazyscaleRequests("pods", "watch")
		require.NotEmpty(t, watches)
		assert.Contains(t, watches[0].RequestURI, "sendInitialEvents=true")
	})
	t.Run("watch_list=false pages through LIST instead of streaming", func(t *testing.T) {
		e := newEnv(t, true)
		e.Namespace("shop", nil)
		e.CreatePods("shop", "cart", 50)
		a := e.startAgent(map[string]string{"workloadmeta.pods.watch_list": "false", "workloadmeta.pods.page_size": "20"})
		e.waitTriggerWatches(a)
		e.CreateDPA("shop", "cart", "cart")
		a.waitState(wmdef.StateSynced)
		assert.Equal(t, 50, a.wm.Count(wmdef.KindPod))
		lists := e.LazyscaleRequests("pods", "list")
		assert.Len(t, lists, 3, "50 pods in pages of 20")
		assert.Contains(t, lists[0].RequestURI, "limit=20")
		for _, w := range e.LazyscaleRequests("pods", "watch") {
			assert.NotContains(t, w.RequestURI, "sendInitialEvents=true")
		}
	})
	t.Run("off never lists pods, even with the gate open", func(t *testing.T) {
		e := newEnv(t, true)
		e.Namespace("shop", nil)
		e.CreatePods("shop", "cart", 20)
		a := e.startAgent(map[string]string{"workloadmeta.pods.collection": "off"})
		e.waitTriggerWatches(a)
		e.CreateDPA("shop", "cart", "cart")
		a.waitGate()
		assert.Never(t, func() bool { return len(e.LazyscaleRequests("pods")) > 0 }, quietWindow, 100*time.Millisecond)
		assert.Equal(t, "off", string(a.statusDoc().PodCollection.State))
		assert.Equal(t, 0, a.wm.Count(wmdef.KindPod))
	})
	t.Run("autoscaling disabled has no trigger watches", func(t *testing.T) {
		e := newEnv(t, true)
		e.Namespace("shop", nil)
		e.CreatePods("shop", "cart", 20)
		a := e.startAgent(map[string]string{"autoscaling.workload.enabled": "false"})
		require.Eventually(t, func() bool { code, _ := a.get("/readyz"); return code == http.StatusOK }, waitFor, 50*time.Millisecond)
		e.CreateDPA("shop", "cart", "cart")
		assert.Never(t, func() bool { return len(e.LazyscaleRequests("")) > 0 || a.gate.IsOpen() },
			quietWindow, 100*time.Millisecond, "a disabled agent made API requests")
		assert.Equal(t, "off", string(a.statusDoc().PodCollection.State))
	})
}

func TestPodChangesAfterSync(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	pods := e.CreatePods("shop", "cart", 5)
	a := e.startAgent(nil)
	e.waitTriggerWatches(a)
	e.CreateDPA("shop", "cart", "cart")
	a.waitState(wmdef.StateSynced)

	sub := a.wm.Subscribe("test", wmdef.Filter{Kinds: []wmdef.Kind{wmdef.KindPod}})
	defer sub.Unsubscribe()
	next := func() wmdef.EventBundle {
		select {
		case b := <-sub.Events():
			return b
		case <-time.After(waitFor):
			t.Fatal("no event bundle")
			return wmdef.EventBundle{}
		}
	}
	initial := next()
	assert.Len(t, initial.Events, 5, "the first bundle is the current state")

	ctx := context.Background()
	// Add.
	added, err := e.CreatePod("shop", "cart-7c9d8f6b5-new", map[string]string{"app": "cart", "pod-template-hash": "7c9d8f6b5"}, pods[0].OwnerReferences[0])
	require.NoError(t, err)
	waitEvent(t, next, wmdef.EventTypeSet, string(added.UID), func(p *wmdef.Pod) bool { return p.Ready })

	// Update: readiness lost.
	added.Status.Conditions[0].Status = "False"
	_, err = e.Kube.CoreV1().Pods("shop").UpdateStatus(ctx, added, metav1.UpdateOptions{})
	require.NoError(t, err)
	waitEvent(t, next, wmdef.EventTypeSet, string(added.UID), func(p *wmdef.Pod) bool { return !p.Ready })

	// A pod turning Succeeded leaves the field selector: it is unset.
	done := pods[1].DeepCopy()
	done.Status.Phase = "Succeeded"
	_, err = e.Kube.CoreV1().Pods("shop").UpdateStatus(ctx, done, metav1.UpdateOptions{})
	require.NoError(t, err)
	waitEvent(t, next, wmdef.EventTypeUnset, string(done.UID), nil)

	// Delete.
	require.NoError(t, e.Kube.CoreV1().Pods("shop").Delete(ctx, pods[2].Name, metav1.DeleteOptions{GracePeriodSeconds: testenv.Ptr(int64(0))}))
	waitEvent(t, next, wmdef.EventTypeUnset, string(pods[2].UID), nil)

	assert.Equal(t, 4, a.wm.Count(wmdef.KindPod))
	_, ok := a.wm.Get(wmdef.EntityID{Kind: wmdef.KindPod, ID: string(pods[2].UID)})
	assert.False(t, ok)
}

// waitEvent reads bundles until one holds an event of type typ for uid that satisfies check.
func waitEvent(t *testing.T, next func() wmdef.EventBundle, typ wmdef.EventType, uid string, check func(*wmdef.Pod) bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		for _, ev := range next().Events {
			p := ev.Entity.(*wmdef.Pod)
			if ev.Type == typ && p.UID == uid && (check == nil || check(p)) {
				return
			}
		}
	}
	t.Fatalf("no %s event for %s", typ, uid)
}
