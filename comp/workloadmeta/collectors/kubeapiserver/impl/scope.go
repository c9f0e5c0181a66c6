package impl

import (
	"context"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/cache"

	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// Scope is where pods are wanted: the namespaces that hold a DPA.
type Scope interface {
	// WaitForSync blocks until Namespaces is complete (true) or ctx is done (false).
	WaitForSync(ctx context.Context) bool
	// Namespaces returns the namespaces whose pods are wanted.
	Namespaces() []string
	// OnChange registers f, called without blocking whenever Namespaces may have changed.
	OnChange(f func())
}

// run is one running reflector: the whole cluster's pods (namespace "") or one namespace's.
type run struct {
	namespace string
	cancel    context.CancelFunc
	done      chan struct{}
	stopped   bool // set under collector.mu before cancel: a late sync is ignored
}

// watching is what the collector runs: one cluster-wide reflector, or one per namespace.
type watching struct {
	cluster    *run
	namespaces map[string]*run
}

// collectScoped follows the scope until ctx ends: a reflector per wanted namespace, one
// cluster-wide reflector above clusterWideAbove namespaces, back to per-namespace reflectors at
// half of it (a margin, so that DPAs coming and going around the threshold do not relist the
// cluster each time).
//
// Every change is a handoff, never two reflectors writing one namespace's pods: the reflectors
// that go are stopped and joined first, the pods of namespaces no longer wanted are dropped,
// then the new reflectors start. A namespace kept across a switch keeps its pods in the store
// until its new reflector's list replaces them, so a reader never sees them vanish and return.
func (c *collector) collectScoped(ctx context.Context) {
	if !c.scope.WaitForSync(ctx) {
		return
	}
	w := &watching{namespaces: map[string]*run{}}
	defer func() {
		c.stopRuns(w.all())
	}()
	for {
		c.follow(ctx, w, c.scope.Namespaces())
		select {
		case <-ctx.Done():
			return
		case <-c.scopeChanged:
		}
	}
}

func (w *watching) all() []*run {
	out := slices.Collect(maps.Values(w.namespaces))
	if w.cluster != nil {
		out = append(out, w.cluster)
	}
	return out
}

// follow moves from what runs to what the wanted namespaces call for.
func (c *collector) follow(ctx context.Context, w *watching, wanted []string) {
	want := map[string]bool{}
	for _, ns := range wanted {
		want[ns] = true
	}
	clusterWide := w.cluster != nil
	switch {
	case !clusterWide && len(want) > c.clusterWideAbove:
		c.log.Info("switching pod collection to one cluster-wide watch",
			zap.Int("namespaces", len(want)), zap.Int("cluster_wide_above", c.clusterWideAbove))
		c.stopRuns(slices.Collect(maps.Values(w.namespaces)))
		w.namespaces = map[string]*run{}
		w.cluster = c.startRun(ctx, "")
		c.setWanted(want, true)
		return
	case clusterWide && len(want) > c.clusterWideAbove/2:
		c.setWanted(want, true)
		return
	case clusterWide:
		c.log.Info("switching pod collection back to per-namespace watches",
			zap.Int("namespaces", len(want)), zap.Int("cluster_wide_above", c.clusterWideAbove))
		c.stopRuns([]*run{w.cluster})
		w.cluster = nil
		c.wm.ResetWhere(wmdef.KindPod, func(e wmdef.Entity) bool { return !want[e.(*wmdef.Pod).Namespace] }, nil)
	}
	var gone []*run
	for ns, r := range w.namespaces {
		if !want[ns] {
			gone = append(gone, r)
			delete(w.namespaces, ns)
		}
	}
	c.stopRuns(gone)
	for _, r := range gone {
		ns := r.namespace
		c.wm.ResetWhere(wmdef.KindPod, func(e wmdef.Entity) bool { return e.(*wmdef.Pod).Namespace == ns }, nil)
		c.log.Info("pod collection dropped a namespace", zap.String("namespace", ns))
	}
	for ns := range want {
		if w.namespaces[ns] == nil {
			w.namespaces[ns] = c.startRun(ctx, ns)
			c.log.Info("pod collection added a namespace", zap.String("namespace", ns))
		}
	}
	c.setWanted(want, false)
}

// startRun starts a reflector over one namespace's pods, or the cluster's ("").
func (c *collector) startRun(ctx context.Context, namespace string) *run {
	rctx, cancel := context.WithCancel(ctx)
	r := &run{namespace: namespace, cancel: cancel, done: make(chan struct{})}
	began := time.Now()
	store := &podStore{wm: c.wm, namespace: namespace, onSynced: func() { c.synced(r, time.Since(began)) }}
	lw := *c.lw
	lw.namespace = namespace
	if namespace != "" {
		// A namespace pages through LIST, whatever watch_list says. The apiserver answers a
		// streaming list (sendInitialEvents) by walking every object of the resource in its
		// watch cache and filtering each for the watcher (k8s.io/apiserver 0.37,
		// getIntervalFromStoreLocked lists the prefix ""), so one namespace's initial sync would
		// cost as much as the whole cluster's, once per namespace watched. A LIST is served
		// from the same cache by the namespace's key prefix.
		lw.watchList = false
	}
	name := "lazyscale-pods"
	if namespace != "" {
		name += "-" + namespace
	}
	ref := cache.NewReflectorWithOptions(&lw, &podObject{}, store, cache.ReflectorOptions{
		Name: name, TypeDescription: "*v1.Pod (slim)",
	})
	go func() {
		defer close(r.done)
		ref.RunWithContext(rctx)
	}()
	return r
}

// stopRuns stops reflectors and waits until none of them can write to the store again, then
// forgets what they had synced.
func (c *collector) stopRuns(runs []*run) {
	if len(runs) == 0 {
		return
	}
	c.mu.Lock()
	for _, r := range runs {
		r.stopped = true
		r.cancel()
		if r.namespace == "" {
			c.sync.ClusterWide = false
		} else {
			delete(c.sync.Namespaces, r.namespace)
		}
	}
	c.publishLocked()
	c.mu.Unlock()
	for _, r := range runs {
		<-r.done
	}
}

// synced records a reflector's first complete list.
func (c *collector) synced(r *run, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.stopped {
		return
	}
	if r.namespace == "" {
		c.sync.ClusterWide = true
	} else {
		c.sync.Namespaces[r.namespace] = true
	}
	c.log.Info("pod collection synced", zap.String("namespace", r.namespace), zap.Bool("cluster_wide", r.namespace == ""),
		zap.Int("pods", c.wm.Count(wmdef.KindPod)), zap.Duration("took", took), zap.Bool("watch_list", c.lw.watchList && r.namespace == ""))
	c.publishLocked()
}

// setWanted records the wanted namespaces and whether they are collected cluster-wide.
func (c *collector) setWanted(want map[string]bool, clusterWide bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wanted, c.clusterWide = want, clusterWide
	c.publishLocked()
}

// completeLocked: the pods of every wanted namespace are in the store (an empty scope is).
func (c *collector) completeLocked() bool {
	if c.clusterWide {
		return c.sync.ClusterWide
	}
	for ns := range c.wanted {
		if !c.sync.Namespaces[ns] {
			return false
		}
	}
	return true
}

// publishLocked tells the store where pods are complete, and sets the collection's state:
// synced once every wanted namespace is (an empty scope is synced at once).
func (c *collector) publishLocked() {
	scope := wmdef.SyncScope{ClusterWide: c.sync.ClusterWide, Namespaces: maps.Clone(c.sync.Namespaces)}
	c.wm.SetSynced(wmdef.KindPod, scope)
	state := wmdef.StateSyncing
	if c.completeLocked() {
		state = wmdef.StateSynced
		if c.syncedAt.IsZero() {
			c.syncedAt = time.Now()
		}
	}
	c.wm.SetCollectionState(wmdef.KindPod, state)
}
