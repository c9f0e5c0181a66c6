package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// churn creates and deletes pods in namespaces until stopped, as a busy cluster does.
type churn struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func startChurn(e *env, namespaces ...string) *churn {
	c := &churn{stop: make(chan struct{})}
	for _, ns := range namespaces {
		c.wg.Go(func() {
			owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "churn-7c9d8f6b5", UID: types.UID("rs-churn"), Controller: testenv.Ptr(true)}
			var alive []string
			for i := 0; ; i++ {
				select {
				case <-c.stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				name := fmt.Sprintf("churn-7c9d8f6b5-%05d", i)
				if _, err := e.CreatePod(ns, name, map[string]string{"app": "churn", "pod-template-hash": "7c9d8f6b5"}, owner); err == nil {
					alive = append(alive, name)
				}
				if len(alive) > 3 {
					_ = e.Kube.CoreV1().Pods(ns).Delete(context.Background(), alive[0], metav1.DeleteOptions{GracePeriodSeconds: testenv.Ptr(int64(0))})
					alive = alive[1:]
				}
			}
		})
	}
	return c
}

func (c *churn) end() { close(c.stop); c.wg.Wait() }

// apiserverPods returns the non-terminal pods of the namespaces (all when nil) as ns/name.
func (e *env) apiserverPods(namespaces []string) []string {
	list, err := e.Kube.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	require.NoError(e.T, err)
	var out []string
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if namespaces == nil || slices.Contains(namespaces, p.Namespace) {
			out = append(out, p.Namespace+"/"+p.Name)
		}
	}
	slices.Sort(out)
	return out
}

func (a *agent) heldPods() []string {
	var out []string
	for _, ent := range a.wm.List(wmdef.KindPod) {
		p := ent.(*wmdef.Pod)
		out = append(out, p.Namespace+"/"+p.Name)
	}
	slices.Sort(out)
	return out
}

// TestPodCollectionFollowsTheDPAs: the pod store holds exactly the apiserver's pods of the
// namespaces that hold a DPA, through namespaces added and dropped while pods churn, the
// switch to one cluster-wide watch above workloadmeta.pods.cluster_wide_above and back.
func TestPodCollectionFollowsTheDPAs(t *testing.T) {
	e := newEnv(t, true)
	ns := []string{e.Namespace("team-a", nil), e.Namespace("team-b", nil), e.Namespace("team-c", nil), e.Namespace("team-d", nil)}
	for _, n := range ns {
		e.CreatePods(n, "web", 10)
	}
	a := e.startAgent(map[string]string{"workloadmeta.pods.cluster_wide_above": "2"})
	e.waitTriggerWatches(a)

	// After each step: churn stops, then the store must converge to exactly the apiserver's
	// pods of the scope.
	// scope nil: every namespace (cluster-wide).
	step := func(name string, change func(), scope []string) {
		t.Helper()
		c := startChurn(e, ns...) // the change and the churn overlap
		change()
		require.Eventually(t, func() bool {
			sc := a.statusDoc().PodCollection.Scope
			return sc != nil && sc.Synced
		}, waitFor, 20*time.Millisecond, "%s: the collection never synced its scope", name)
		c.end()
		// The store holds exactly the scope's pods, and says which namespaces are complete.
		synced := func() string {
			var wrong []string
			for _, n := range ns {
				if want := scope == nil || slices.Contains(scope, n); a.wm.Synced(wmdef.KindPod, n) != want {
					wrong = append(wrong, fmt.Sprintf("%s synced=%v", n, !want))
				}
			}
			return strings.Join(wrong, ", ")
		}
		require.Eventually(t, func() bool {
			return slices.Equal(a.heldPods(), e.apiserverPods(scope)) && synced() == ""
		}, waitFor, 50*time.Millisecond, "%s: the store never held exactly the apiserver's pods of %v, synced as such (%s)", name, scope, stringer(synced))
	}

	step("the first DPA", func() { e.CreateDPA(ns[0], "web", "web") }, ns[:1])
	doc := a.statusDoc()
	require.NotNil(t, doc.PodCollection.Scope)
	assert.Equal(t, []string{ns[0]}, doc.PodCollection.Scope.Watched)
	assert.False(t, doc.PodCollection.Scope.ClusterWide)
	// The watch is the namespace's, not the cluster's.
	for _, w := range e.LazyscaleRequests("pods", "watch") {
		assert.Contains(t, w.RequestURI, "/namespaces/"+ns[0]+"/pods", "only the DPA's namespace is watched")
	}

	step("a second namespace", func() { e.CreateDPA(ns[1], "web", "web") }, ns[:2])
	step("a second DPA in the same namespace changes nothing", func() { e.CreateDPA(ns[1], "web2", "web2") }, ns[:2])
	step("above the threshold: cluster-wide", func() { e.CreateDPA(ns[2], "web", "web") }, nil)
	doc = a.statusDoc()
	assert.True(t, doc.PodCollection.Scope.ClusterWide)
	assert.Equal(t, 3, doc.PodCollection.Scope.Namespaces)
	clusterWatches := 0
	for _, w := range e.LazyscaleRequests("pods", "watch") {
		if strings.HasPrefix(w.RequestURI, "/api/v1/pods") {
			clusterWatches++
		}
	}
	assert.Positive(t, clusterWatches, "one cluster-wide watch")

	deleteDPA := func(n, name string) {
		require.NoError(t, e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(n).Delete(context.Background(), name, metav1.DeleteOptions{}))
	}
	step("back to per-namespace watches at half the threshold", func() {
		deleteDPA(ns[2], "web")
		deleteDPA(ns[1], "web")
		deleteDPA(ns[1], "web2")
	}, ns[:1])
	assert.False(t, a.statusDoc().PodCollection.Scope.ClusterWide)

	step("the last DPA goes: no pod held", func() { deleteDPA(ns[0], "web") }, []string{})
	assert.Empty(t, a.heldPods())
	assert.Equal(t, "0", a.metric(`lazyscale_workloadmeta_entities{kind="pod"}`))
}

// stringer defers a message's computation to when it is printed.
type stringer func() string

func (f stringer) String() string { return f() }
