package impl

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	wmimpl "github.com/lazyscale/lazyscale/comp/workloadmeta/impl"
)

type staticConfig configdef.Config

func (c staticConfig) Get() configdef.Config { return configdef.Config(c) }

// oneTermGate is a gate whose one term is open from the start until end.
type oneTermGate struct {
	term context.Context
	end  context.CancelFunc
}

func newOneTermGate() *oneTermGate {
	ctx, cancel := context.WithCancel(context.Background())
	return &oneTermGate{term: ctx, end: cancel}
}

func (g *oneTermGate) Open(gatedef.Trigger) bool { return false }
func (g *oneTermGate) Close() bool               { g.end(); return true }
func (g *oneTermGate) IsOpen() bool              { return g.term.Err() == nil }
func (g *oneTermGate) Opened() <-chan struct{}   { return make(chan struct{}) }
func (g *oneTermGate) Wait(context.Context) bool { return g.IsOpen() }
func (g *oneTermGate) Status() gatedef.Status    { return gatedef.Status{Open: g.IsOpen(), Term: 1} }
func (g *oneTermGate) Join(ctx context.Context) (context.Context, uint64, func(), bool) {
	if g.term.Err() != nil {
		<-ctx.Done() // no next term
		return nil, 0, nil, false
	}
	return g.term, 1, func() {}, true
}

// testScope is a scope the test sets.
type testScope struct {
	mu  sync.Mutex
	ns  []string
	fns []func()
}

func (s *testScope) WaitForSync(context.Context) bool { return true }
func (s *testScope) Namespaces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ns)
}
func (s *testScope) OnChange(f func()) {
	s.mu.Lock()
	s.fns = append(s.fns, f)
	s.mu.Unlock()
}
func (s *testScope) set(ns ...string) {
	s.mu.Lock()
	s.ns = ns
	fns := slices.Clone(s.fns)
	s.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

func slimPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name)}}
}

// held returns the store's pods as namespace/name.
func held(wm wmdef.Component) []string {
	var out []string
	for _, e := range wm.List(wmdef.KindPod) {
		p := e.(*wmdef.Pod)
		out = append(out, p.Namespace+"/"+p.Name)
	}
	slices.Sort(out)
	return out
}

// TestScopedCollection: the store holds exactly the pods of the wanted namespaces through
// namespaces added and dropped, pod churn, the switch to one cluster-wide watch above the
// threshold, and back at half of it; then nothing is left running.
func TestScopedCollection(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kube := fake.NewClientset()
	for _, p := range []*corev1.Pod{slimPod("a", "p1"), slimPod("a", "p2"), slimPod("b", "p3"), slimPod("c", "p4"), slimPod("d", "p5")} {
		_, err := kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	store, err := wmimpl.NewComponent(wmimpl.Requires{Logger: zaptest.NewLogger(t), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	defer func() { _ = store.Stop(context.Background()) }()
	cfg := configdef.Defaults()
	cfg.Workloadmeta.Pods.WatchList = false // the fake cannot stream an initial list
	cfg.Workloadmeta.Pods.ClusterWideAbove = 2
	scope := &testScope{ns: []string{"a"}}
	gate := newOneTermGate()
	c, err := NewComponent(Requires{Config: staticConfig(cfg), Logger: zaptest.NewLogger(t), Kube: kube, Gate: gate, Store: store.Comp, Scope: scope})
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	wm := store.Comp

	expect := func(step string, want ...string) {
		t.Helper()
		require.Eventually(t, func() bool { return slices.Equal(held(wm), want) }, 10*time.Second, 10*time.Millisecond,
			"%s: want %v", step, want)
		require.True(t, wm.WaitForCollectionState(ctx, wmdef.KindPod, wmdef.StateSynced), step)
	}
	expect("one namespace", "a/p1", "a/p2")
	assert.True(t, wm.Synced(wmdef.KindPod, "a"))
	assert.False(t, wm.Synced(wmdef.KindPod, "b"))
	st := c.Status()
	require.NotNil(t, st.Scope)
	assert.Equal(t, []string{"a"}, st.Scope.Watched)
	assert.False(t, st.Scope.ClusterWide)

	// Churn in the wanted namespace and outside it.
	_, err = kube.CoreV1().Pods("a").Create(ctx, slimPod("a", "p6"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, kube.CoreV1().Pods("a").Delete(ctx, "p1", metav1.DeleteOptions{}))
	_, err = kube.CoreV1().Pods("b").Create(ctx, slimPod("b", "p7"), metav1.CreateOptions{})
	require.NoError(t, err)
	expect("churn", "a/p2", "a/p6")

	scope.set("a", "b")
	expect("a namespace added", "a/p2", "a/p6", "b/p3", "b/p7")
	assert.True(t, wm.Synced(wmdef.KindPod, "b"))

	scope.set("a", "b", "c") // above 2: one cluster-wide watch, every pod
	expect("cluster-wide", "a/p2", "a/p6", "b/p3", "b/p7", "c/p4", "d/p5")
	assert.True(t, wm.Synced(wmdef.KindPod, "z"), "cluster-wide: every namespace is synced")
	st = c.Status()
	assert.True(t, st.Scope.ClusterWide)
	assert.Empty(t, st.Scope.Watched)

	scope.set("a", "b") // above half of 2: still cluster-wide
	require.NoError(t, kube.CoreV1().Pods("d").Delete(ctx, "p5", metav1.DeleteOptions{}))
	expect("still cluster-wide", "a/p2", "a/p6", "b/p3", "b/p7", "c/p4")
	assert.True(t, c.Status().Scope.ClusterWide)

	scope.set("b") // at half: back to one watch per namespace
	expect("back to namespaces", "b/p3", "b/p7")
	assert.False(t, wm.Synced(wmdef.KindPod, "a"))
	assert.False(t, c.Status().Scope.ClusterWide)

	scope.set() // the last DPA went
	expect("nothing wanted")
	assert.Equal(t, 0, wm.Count(wmdef.KindPod))

	// The gate closes with pods held: they are released and the collection is dormant.
	scope.set("b")
	expect("before the gate closes", "b/p3", "b/p7")
	gate.Close()
	require.True(t, wm.WaitForCollectionState(ctx, wmdef.KindPod, wmdef.StateDormant))
	assert.Equal(t, 0, wm.Count(wmdef.KindPod))
	assert.False(t, wm.Synced(wmdef.KindPod, "b"))

	require.NoError(t, c.Stop(context.Background()))
}

// TestNamespaceCollectionPages: with watch_list on, a namespace's collection still pages
// through LIST (the apiserver would walk its whole cache for a namespace's streaming list),
// while the cluster-wide collection streams.
func TestNamespaceCollectionPages(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kube := fake.NewClientset(slimPod("a", "p1"), slimPod("b", "p2"))
	store, err := wmimpl.NewComponent(wmimpl.Requires{Logger: zaptest.NewLogger(t), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	defer func() { _ = store.Stop(context.Background()) }()
	cfg := configdef.Defaults()
	require.True(t, cfg.Workloadmeta.Pods.WatchList, "the default streams")
	scope := &testScope{ns: []string{"a"}}
	gate := newOneTermGate()
	c, err := NewComponent(Requires{Config: staticConfig(cfg), Logger: zaptest.NewLogger(t), Kube: kube, Gate: gate, Store: store.Comp, Scope: scope})
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	// The fake cannot stream an initial list: had the namespace's reflector tried, it would
	// not sync within the wait.
	require.True(t, store.Comp.WaitForCollectionState(ctx, wmdef.KindPod, wmdef.StateSynced))
	assert.Equal(t, []string{"a/p1"}, held(store.Comp))
	var lists []string
	for _, a := range kube.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "pods" {
			lists = append(lists, a.GetNamespace())
		}
	}
	assert.Equal(t, []string{"a"}, lists, "one LIST of the namespace's pods")
	gate.Close()
	require.True(t, store.Comp.WaitForCollectionState(ctx, wmdef.KindPod, wmdef.StateDormant))
	require.NoError(t, c.Stop(context.Background()))

}
