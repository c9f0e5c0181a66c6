// Package profiles is the cluster-profile controller: it turns
// DatadogPodAutoscalerClusterProfiles into DPAs. Every Deployment or StatefulSet labelled
// autoscaling.datadoghq.com/profile=<profile>, or in a namespace so labelled (the workload's
// own label wins; "excluded" opts out), gets a DPA named
// <workload>-<8 hex of sha256("apps/<Kind>/<namespace>/<name>")> whose spec is the profile's
// template. Generated DPAs carry the profile label and the profile hash, as the Cluster Agent's;
// lazyscale updates them when the template changes and deletes them when the workload leaves
// the profile (label removed, excluded, workload or profile deleted).
//
// It runs on the leader as soon as the gate is open, without waiting for the pod collection:
// the labels it reads are what opened the gate, and the DPAs it writes are what the rest of
// the stack then works on. Its watches start with the leadership term and stop with it, so a
// follower keeps no workload cache; the workload and namespace watches start only once a
// profile (or a generated DPA) exists. They are metadata-only and trimmed to the fields read.
package profiles

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/apiobject"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/core/telemetry"
	"github.com/lazyscale/lazyscale/comp/kubeclient/informer"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
)

// Options is everything the controller is built from.
type Options struct {
	Logger   *zap.Logger
	Dynamic  dynamic.Interface
	Metadata metadata.Interface
	// DPAs is the shared DPA cache's informer.
	DPAs   cache.SharedIndexInformer
	Leader leaderdef.Component
	// OwnNamespace is lazyscale's namespace: no DPA is generated there.
	OwnNamespace string
	Workers      int
	// Now is the clock; nil means time.Now.
	Now     func() time.Time
	Metrics *Metrics
}

// Metrics are the controller's counters, registered once per process.
type Metrics struct {
	generated *prometheus.CounterVec
}

// NewMetrics registers the controller's counters on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{generated: telemetry.NewCounterVec(prometheus.CounterOpts{
		Name: "lazyscale_autoscaling_generated_autoscalers_total", Help: "DPAs created, updated and deleted from cluster profiles.",
	}, []string{"action"}, []string{"created", "updated", "deleted"})}
	if err := reg.Register(m.generated); err != nil {
		return nil, fmt.Errorf("register cluster profile metrics: %w", err)
	}
	return m, nil
}

// Controller is the cluster-profile controller.
type Controller struct {
	log          *zap.Logger
	dyn          dynamic.Interface
	md           metadata.Interface
	dpas         cache.SharedIndexInformer
	leader       leaderdef.Component
	ownNamespace string
	workers      int
	now          func() time.Time
	metrics      *Metrics

	// The term's informers and queue, set by runTerm.
	mu         sync.Mutex
	profiles   cache.SharedIndexInformer
	workloads  map[string]cache.SharedIndexInformer // by kind
	namespaces cache.SharedIndexInformer
	queue      workqueue.TypedRateLimitingInterface[string]
	state      string // a def.Profiles* state; guarded by mu
}

// New builds the controller. It watches nothing before Run.
func New(o Options) (*Controller, error) {
	if o.DPAs == nil || o.Leader == nil || o.Metrics == nil {
		return nil, errors.New("cluster profile controller: DPAs, leader and metrics are required")
	}
	c := &Controller{log: o.Logger, dyn: o.Dynamic, md: o.Metadata, dpas: o.DPAs, leader: o.Leader, ownNamespace: o.OwnNamespace,
		workers: max(o.Workers, 1), now: o.Now, metrics: o.Metrics, state: def.ProfilesIdle}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Run applies the profiles under each leadership term until ctx is done. It returns nil
// when ctx ends.
func (p *Controller) Run(ctx context.Context) error {
	leaderdef.WhileLeading(ctx, p.leader, p.runTerm)
	return nil
}

// Status is the controller's part of /status autoscaling.
func (p *Controller) Status() def.ProfilesStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := def.ProfilesStatus{State: p.state}
	if p.state == def.ProfilesRunning {
		for _, inf := range p.workloads {
			st.WorkloadsWatched += len(inf.GetStore().ListKeys())
		}
	}
	return st
}

func (p *Controller) setState(s string) {
	p.mu.Lock()
	p.state = s
	p.mu.Unlock()
}

func ptrTo[T any](v T) *T { return &v }

// runTerm runs the controller for one leadership term.
func (p *Controller) runTerm(ctx context.Context) {
	// Profiles are few, and their CRD may be missing: LIST + WATCH, a missing CRD said once.
	profiles := informer.New(informer.Dynamic(p.dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource), informer.Options{}),
		&unstructured.Unstructured{}, cache.Indexers{}, informer.NewWatchErrors(p.log, "DatadogPodAutoscalerClusterProfile"))
	workloads := map[string]cache.SharedIndexInformer{}
	for kind, gvr := range v1alpha2.ProfileWorkloadResources {
		workloads[kind] = metadataInformer(p.md, gvr, p.log)
	}
	namespaces := metadataInformer(p.md, v1alpha2.NamespacesResource, p.log)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "clusterprofiles"})

	p.mu.Lock()
	p.profiles, p.workloads, p.namespaces, p.queue = profiles, workloads, namespaces, q
	p.state = def.ProfilesWaitingForProfile
	p.mu.Unlock()
	defer func() {
		// The term's caches go with it: a stopped informer still holds its objects, and the
		// gate may stay closed for long.
		p.mu.Lock()
		p.profiles, p.workloads, p.namespaces, p.queue = nil, nil, nil, nil
		p.state = def.ProfilesIdle
		p.mu.Unlock()
	}()

	// The workload and namespace watches start only once there is something to do: a profile
	// (a built-in one counts once a workload or namespace is labelled with its name), or a
	// generated DPA to keep or clean up. A cluster that uses DPAs made by hand only never pays
	// for them.
	needed := make(chan struct{})
	need := sync.OnceFunc(func() { close(needed) })
	_, _ = profiles.AddEventHandler(p.handler(func(old, m metav1.Object) {
		// A built-in profile created, deleted, or its template or label edited: reset it (once
		// the workers run). Its status writes (ours) change neither.
		if isBuiltinName(m.GetName()) && (old == nil || old.GetGeneration() != m.GetGeneration() ||
			old.GetLabels()[BuiltinLabel] != m.GetLabels()[BuiltinLabel]) {
			q.Add(builtinKey)
		}
		if !isBuiltin(m) {
			need()
		}
		q.Add(profileKeyPrefix + m.GetName())
		// A status write (ours) leaves the generation: no workload to look at again.
		if old == nil || old.GetGeneration() != m.GetGeneration() ||
			old.GetAnnotations()[v1alpha2.PreviewAnnotation] != m.GetAnnotations()[v1alpha2.PreviewAnnotation] {
			p.enqueueAllWorkloads() // its template, preview features or existence changed
		}
	}))
	for kind, inf := range workloads {
		_, _ = inf.AddEventHandler(p.handler(func(_, m metav1.Object) { q.Add(kind + "/" + m.GetNamespace() + "/" + m.GetName()) }))
	}
	_, _ = namespaces.AddEventHandler(p.handler(func(_, m metav1.Object) { p.enqueueNamespace(m.GetName()) }))
	reg, err := p.dpas.AddEventHandler(p.handler(func(_, m metav1.Object) {
		if profile, ok := isGenerated(m.GetLabels()); ok {
			need()
			q.Add(profileKeyPrefix + profile) // its count
		}
		// Its target: a generated DPA deleted by hand is recreated, and one made by hand
		// replaces the generated one. Not before profiles are in use: no DPA is generated
		// then, the workers do not run yet, and the workload watches' first list queues every
		// workload when they start (a queue holding a key per DPA meanwhile would show as a
		// depth that never drains).
		if u, ok := m.(*unstructured.Unstructured); ok && closed(needed) {
			kind, name := apiobject.TargetRefOf(u)
			q.Add(kind + "/" + m.GetNamespace() + "/" + name)
		}
	}))
	if err != nil {
		p.log.Error("cannot follow DPAs; cluster profiles are not applied", zap.Error(err))
		return
	}
	defer func() { _ = p.dpas.RemoveEventHandler(reg) }()

	var wg sync.WaitGroup
	defer wg.Wait()
	termCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { profiles.RunWithContext(termCtx) })
	wg.Go(func() {
		p.watchBuiltinUse(termCtx, func() {
			need()
			q.Add(builtinKey)
		})
	})
	select {
	case <-needed:
	case <-termCtx.Done():
		q.ShutDown()
		return
	}
	p.log.Info("cluster profiles in use: watching the metadata of Deployments, StatefulSets and Namespaces")
	for _, inf := range []cache.SharedIndexInformer{namespaces, workloads["Deployment"], workloads["StatefulSet"]} {
		wg.Go(func() { inf.RunWithContext(termCtx) })
	}
	synced := []cache.InformerSynced{profiles.HasSynced, namespaces.HasSynced, p.dpas.HasSynced, reg.HasSynced}
	for _, inf := range workloads {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(termCtx.Done(), synced...) {
		q.ShutDown()
		return
	}
	p.setState(def.ProfilesRunning)
	p.log.Info("cluster profile controller started")
	for range p.workers {
		wg.Go(func() {
			for p.processNext(termCtx, q) {
			}
		})
	}
	<-termCtx.Done()
	q.ShutDown()
	p.log.Info("cluster profile controller stopped")
}

// handler calls f with the object of every add, update and delete; old is the object an
// update replaced, nil for an add or a delete.
func (p *Controller) handler(f func(old, obj metav1.Object)) cache.ResourceEventHandler {
	accessor := func(obj any) metav1.Object {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil
		}
		return m
	}
	call := func(old, obj any) {
		m := accessor(obj)
		if m == nil {
			return
		}
		var o metav1.Object
		if old != nil {
			o = accessor(old)
		}
		f(o, m)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { call(nil, obj) },
		UpdateFunc: call,
		DeleteFunc: func(obj any) { call(nil, obj) },
	}
}

func (p *Controller) enqueueAllWorkloads() {
	for kind, inf := range p.workloads {
		for _, key := range inf.GetStore().ListKeys() {
			p.queue.Add(kind + "/" + key)
		}
	}
}

func (p *Controller) enqueueNamespace(ns string) {
	for kind, inf := range p.workloads {
		objs, _ := inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
		for _, o := range objs {
			if m, err := meta.Accessor(o); err == nil {
				p.queue.Add(kind + "/" + ns + "/" + m.GetName())
			}
		}
	}
}

func (p *Controller) processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	var err error
	if key == builtinKey {
		err = p.ensureBuiltins(ctx)
	} else if name, ok := strings.CutPrefix(key, profileKeyPrefix); ok {
		err = p.syncProfile(ctx, name)
	} else {
		err = p.syncWorkload(ctx, key)
	}
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("cluster profile sync failed; retrying", zap.String("key", key), zap.Error(err))
			q.AddRateLimited(key)
		}
		return true
	}
	q.Forget(key)
	return true
}

// closed says whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
