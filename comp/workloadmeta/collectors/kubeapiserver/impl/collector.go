// Package impl implements the kube-apiserver pod collector of workloadmeta.
//
// In auto mode the collector is deferred: it starts nothing, lists nothing and watches
// nothing until the autoscaling gate opens. This is what makes workload autoscaling free
// in a cluster that does not use it.
package impl

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// Requires is what the pod collector needs.
type Requires struct {
	Config configdef.Component
	Logger *zap.Logger
	Kube   kubernetes.Interface
	Gate   gatedef.Component
	Store  wmdef.Component
	// Scope is where pods are wanted (the namespaces holding a DPA); nil collects the whole
	// cluster.
	Scope Scope
	// Leader, when set, restricts a deferred collection to the leader (unless
	// workloadmeta.pods.on_followers): followers hold no pods.
	Leader leaderdef.Component
}

// Provides is what the pod collector gives: its lifecycle hooks, the value of its /status
// section and its readiness check.
type Provides struct {
	Start  func(context.Context) error
	Stop   func(context.Context) error
	Status func() wmdef.PodCollectionStatus
	Ready  func() error
}

// The resolved modes, as the collector names them.
const (
	ModeDeferred = wmdef.ModeDeferred
	ModeEager    = wmdef.ModeEager
	ModeOff      = wmdef.ModeOff
)

type collector struct {
	log      *zap.Logger
	mode     wmdef.CollectionMode
	lw       *podListWatch
	gate     gatedef.Component
	wm       wmdef.Component
	routines lifecycle.Routines
	// scope is nil when the collection is cluster-wide for good: eager mode,
	// cluster_wide_above 0, or no scope given.
	scope            Scope
	clusterWideAbove int
	// scopeChanged is signalled when the scope's namespaces may have changed.
	scopeChanged chan struct{}
	// leader is nil when every replica collects (no leader election given, or on_followers).
	leader leaderdef.Component

	mu sync.Mutex
	// began is when the collection started; syncedAt when everything wanted was first synced.
	began, syncedAt time.Time
	// wanted are the namespaces wanted; clusterWide whether one cluster-wide reflector runs
	// for them.
	wanted      map[string]bool
	clusterWide bool
	// sync is where the store's pods are complete.
	sync wmdef.SyncScope
}

// ResolveMode maps the configured collection mode to what the collector does.
func ResolveMode(cfg configdef.Config) wmdef.CollectionMode {
	switch cfg.Workloadmeta.Pods.Collection {
	case configdef.CollectionEager:
		return ModeEager
	case configdef.CollectionAuto:
		if cfg.Autoscaling.Workload.Enabled {
			return ModeDeferred
		}
	}
	return ModeOff
}

// NewComponent builds the collector. It does not contact the apiserver.
func NewComponent(reqs Requires) (Provides, error) {
	cfg := reqs.Config.Get()
	c := &collector{
		log:  reqs.Logger.Named("podcollector"),
		mode: ResolveMode(cfg),
		lw: &podListWatch{
			client:    reqs.Kube,
			pageSize:  cfg.Workloadmeta.Pods.PageSize,
			watchList: cfg.Workloadmeta.Pods.WatchList,
		},
		gate:             reqs.Gate,
		wm:               reqs.Store,
		scope:            reqs.Scope,
		clusterWideAbove: cfg.Workloadmeta.Pods.ClusterWideAbove,
		sync:             wmdef.SyncScope{Namespaces: map[string]bool{}},
		scopeChanged:     make(chan struct{}, 1),
		leader:           reqs.Leader,
	}
	if cfg.Workloadmeta.Pods.OnFollowers {
		c.leader = nil
	}
	if c.mode == ModeEager || c.clusterWideAbove == 0 {
		c.scope = nil
	}
	return Provides{Start: c.start, Stop: c.routines.Stop, Status: c.status, Ready: c.ready}, nil
}

func (c *collector) start(context.Context) error {
	switch c.mode {
	case ModeOff:
		c.wm.SetCollectionState(wmdef.KindPod, wmdef.StateOff)
	case ModeEager:
		c.wm.SetCollectionState(wmdef.KindPod, wmdef.StateEager)
		c.routines.Go(c.collect)
	case ModeDeferred:
		c.wm.SetCollectionState(wmdef.KindPod, wmdef.StateDormant)
		if c.scope != nil {
			// Once for the process: every term's collection reads the same signal.
			c.scope.OnChange(func() {
				select {
				case c.scopeChanged <- struct{}{}:
				default:
				}
			})
		}
		c.routines.Go(func(ctx context.Context) {
			gatedef.WhileOpen(ctx, c.gate, func(term context.Context, n uint64) {
				if c.leader == nil {
					c.runTerm(term, n)
					return
				}
				// Only the leader's controllers read pods: a follower stands by.
				c.wm.SetCollectionState(wmdef.KindPod, wmdef.StateStandby)
				leaderdef.WhileLeading(term, c.leader, func(leading context.Context) {
					c.runTerm(leading, n)
					if term.Err() == nil {
						c.wm.SetCollectionState(wmdef.KindPod, wmdef.StateStandby) // leadership lost, the term goes on
					}
				})
				c.wm.SetCollectionState(wmdef.KindPod, wmdef.StateDormant)
			})
		})
	}
	return nil
}

// runTerm collects until ctx ends (the gate's term, or the leadership within it), then
// releases every pod.
func (c *collector) runTerm(ctx context.Context, term uint64) {
	c.log.Info("autoscaling gate open; starting pod collection", zap.Uint64("term", term))
	c.wm.SetCollectionState(wmdef.KindPod, wmdef.StateSyncing)
	c.collect(ctx)
	c.release(term)
}

// release ends a term's collection once its reflectors have stopped: the store lets go of
// every pod (the memory goes back to the runtime) and the collection is dormant again, as
// before the first term.
func (c *collector) release(term uint64) {
	c.wm.Reset(wmdef.KindPod, nil)
	c.mu.Lock()
	c.began, c.syncedAt = time.Time{}, time.Time{}
	c.wanted, c.clusterWide = nil, false
	c.sync = wmdef.SyncScope{Namespaces: map[string]bool{}}
	c.wm.SetSynced(wmdef.KindPod, wmdef.SyncScope{})
	c.mu.Unlock()
	c.wm.SetCollectionState(wmdef.KindPod, wmdef.StateDormant)
	c.log.Info("pod collection stopped (the gate's term or this replica's leadership ended); every pod released", zap.Uint64("term", term))
}

// collect runs the pod reflectors until ctx is done: one over the whole cluster, or one per
// wanted namespace (scope.go). A reflector retries list and watch failures with backoff; it
// only returns on cancellation.
func (c *collector) collect(ctx context.Context) {
	c.mu.Lock()
	c.began = time.Now()
	c.mu.Unlock()
	c.log.Info("pod collection starting", zap.String("mode", string(c.mode)), zap.Bool("scoped", c.scope != nil),
		zap.Int("cluster_wide_above", c.clusterWideAbove), zap.Bool("watch_list", c.lw.watchList), zap.Int64("page_size", c.lw.pageSize))
	if c.scope != nil {
		c.collectScoped(ctx)
		return
	}
	c.setWanted(nil, true)
	r := c.startRun(ctx, "")
	<-ctx.Done()
	c.stopRuns([]*run{r})
}

func (c *collector) status() wmdef.PodCollectionStatus {
	s := wmdef.PodCollectionStatus{
		State:     c.wm.CollectionState(wmdef.KindPod),
		Mode:      c.mode,
		Pods:      c.wm.Count(wmdef.KindPod),
		WatchList: c.lw.watchList,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.syncedAt.IsZero() {
		s.SyncedAt = c.syncedAt
		s.SyncedIn = c.syncedAt.Sub(c.began).Round(time.Millisecond).String()
	}
	if !c.began.IsZero() {
		sc := &wmdef.PodScopeStatus{ClusterWide: c.clusterWide, Scoped: c.scope != nil, ClusterWideAbove: c.clusterWideAbove,
			Namespaces: len(c.wanted), Synced: c.completeLocked()}
		if !c.clusterWide {
			sc.Watched = slices.Sorted(maps.Keys(c.wanted))
			sc.NamespacesSynced = len(c.sync.Namespaces)
		}
		s.Scope = sc
	}
	return s
}

// ready: an eager collector is part of startup readiness; a deferred one never is, so that a
// gate opening can never make a running agent unready.
func (c *collector) ready() error {
	if c.mode == ModeEager && c.wm.CollectionState(wmdef.KindPod) != wmdef.StateSynced {
		return errors.New("eager pod collection not synced yet")
	}
	return nil
}
