// Package impl composes the autoscaling stack from its parts, each its own package built
// whole by its constructor: the DPA view and pod patcher (dpaview), the pod watcher
// (podwatcher), the DPA controller (controller) and the cluster-profile controller
// (profiles). It owns the start order and nothing else:
//
//  1. the gate opens: the cluster-profile controller runs on the leader (it needs no pods);
//  2. workloadmeta's pod collection and the DPA cache have synced: the view, the pod watcher
//     and the DPA controller are built and run;
//  3. the view has synced: the pod patcher is installed into the webhook, and the DPA
//     controller reconciles on the leader.
package impl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/record"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	webhookdef "github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/controller"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/dpametrics"
	"github.com/lazyscale/lazyscale/comp/autoscaling/dpaview"
	"github.com/lazyscale/lazyscale/comp/autoscaling/podwatcher"
	"github.com/lazyscale/lazyscale/comp/autoscaling/profiles"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/core/telemetry"
	dpacachedef "github.com/lazyscale/lazyscale/comp/dpacache/def"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// Requires is what the stack needs.
type Requires struct {
	Config   configdef.Component
	Logger   *zap.Logger
	Kube     kubernetes.Interface
	Dynamic  dynamic.Interface
	Metadata metadata.Interface
	// RESTConfig builds the scale client.
	RESTConfig   *rest.Config
	Gate         gatedef.Component
	DPAs         dpacachedef.Component
	Workloadmeta wmdef.Component
	Leader       leaderdef.Component
	Webhook      webhookdef.Component
	Registerer   prometheus.Registerer
	// Sources are the recommendation plugins.
	Sources []def.RecommendationSource
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Provides is what the stack gives: its lifecycle hooks and its /status values.
type Provides struct {
	Comp   def.Component
	Start  func(context.Context) error
	Stop   func(context.Context) error
	Status func() def.Status
	// Autoscalers is how many DPAs the running stack follows (0 before).
	Autoscalers func() int
	// Sizes is what the stack's parts hold (def.Sizer), the recommendation sources' included;
	// only the sources' while dormant.
	Sizes func() map[string]int
	// Report is what the status page shows of the DPAs (nothing until the stack runs).
	Report func() def.Report
}

// parts are what the stack built once the gate opened and the caches synced.
type parts struct {
	view *dpaview.View
	pods *podwatcher.Watcher
	ctrl *controller.Controller
}

type component struct {
	log      *zap.Logger
	reqs     Requires
	cfg      configdef.Config
	routines lifecycle.Routines

	// enabled is autoscaling.workload.enabled: nothing runs when false.
	enabled     bool
	ctrlMetrics *controller.Metrics
	profiles    *profiles.Controller // nil when disabled
	running     chan struct{}        // closed when the stack first runs
	runningOnce sync.Once
	parts       atomic.Pointer[parts]

	mu          sync.Mutex
	state       def.State
	since       time.Time
	transitions *prometheus.CounterVec
	stateGauge  *prometheus.GaugeVec
}

var _ def.Component = (*component)(nil)

var allStates = []def.State{def.StateDisabled, def.StateWaitingForGate, def.StateWaitingForCaches, def.StateRunning, def.StateStopped}

// NewComponent builds the stack's composition. Nothing runs, lists or watches before the
// gate opens.
func NewComponent(reqs Requires) (Provides, error) {
	if reqs.Now == nil {
		reqs.Now = time.Now
	}
	c := &component{
		log: reqs.Logger.Named("autoscaling"), reqs: reqs, cfg: reqs.Config.Get(), running: make(chan struct{}),
		transitions: telemetry.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_autoscaling_stack_state_entered_total",
			Help: "How many times the autoscaling stack entered each state.",
		}, []string{"state"}, stateNames()),
		stateGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lazyscale_autoscaling_stack_state",
			Help: "1 for the autoscaling stack's current state, 0 for the others.",
		}, []string{"state"}),
	}
	for _, m := range []prometheus.Collector{c.transitions, c.stateGauge} {
		if err := reqs.Registerer.Register(m); err != nil {
			return Provides{}, fmt.Errorf("register autoscaling metrics: %w", err)
		}
	}
	// Per-DPA series, read from the running term's view at scrape time: none while dormant.
	perDPA := dpametrics.New(func() dpametrics.Source {
		if p := c.parts.Load(); p != nil {
			return p.view
		}
		return nil
	}, c.cfg.Autoscaling.Workload.MetricsMax)
	if err := reqs.Registerer.Register(perDPA); err != nil {
		return Provides{}, fmt.Errorf("register per-DPA metrics: %w", err)
	}
	var err error
	if c.ctrlMetrics, err = controller.NewMetrics(reqs.Registerer); err != nil {
		return Provides{}, err
	}
	profileMetrics, err := profiles.NewMetrics(reqs.Registerer)
	if err != nil {
		return Provides{}, err
	}
	c.enabled = c.cfg.Autoscaling.Workload.Enabled
	initial := def.StateDisabled
	if c.enabled {
		initial = def.StateWaitingForGate
		c.profiles, err = profiles.New(profiles.Options{
			Logger: c.log.Named("profiles"), Dynamic: reqs.Dynamic, Metadata: reqs.Metadata, DPAs: reqs.DPAs.Informer(),
			Leader: reqs.Leader, OwnNamespace: c.cfg.Admission.ServiceNamespace, Workers: c.cfg.Autoscaling.Workload.NumWorkers,
			Now: reqs.Now, Metrics: profileMetrics,
		})
		if err != nil {
			return Provides{}, err
		}
	}
	c.setState(initial)
	return Provides{Comp: c, Start: c.start, Stop: c.stop, Status: c.status, Autoscalers: c.autoscalerCount, Sizes: c.sizes, Report: c.report}, nil
}

func (c *component) start(context.Context) error {
	if !c.enabled {
		return nil
	}
	c.routines.Go(c.run)
	c.routines.Go(c.runProfiles)
	return nil
}

// runProfiles runs the cluster profile controller in each term of the gate, without waiting
// for the pod collection: what it generates does not depend on pods.
func (c *component) runProfiles(ctx context.Context) {
	gatedef.WhileOpen(ctx, c.reqs.Gate, func(term context.Context, _ uint64) {
		_ = c.profiles.Run(term) // returns nil when the term ends
	})
}

func (c *component) stop(ctx context.Context) error {
	err := c.routines.Stop(ctx)
	if c.enabled {
		c.setState(def.StateStopped)
	}
	return err
}

// run is the start order, in each term of the gate: gate, pod collection and DPA cache, then
// the stack. When the term ends, the stack stops whole and the patcher leaves the webhook.
//
// When the process stops (ctx ends), the patcher stays: the admission server may still be
// answering reviews (it drains after this component stops), and a review answered without the
// patcher admits a new pod of an autoscaled workload without its recommendation. The patcher
// reads the view's last state, which stays valid for the seconds the server drains.
func (c *component) run(ctx context.Context) {
	gatedef.WhileOpen(ctx, c.reqs.Gate, func(term context.Context, n uint64) {
		defer func() {
			c.parts.Store(nil)
			if ctx.Err() == nil {
				c.reqs.Webhook.SetPatcher(nil)
				c.setState(def.StateWaitingForGate)
				c.log.Info("autoscaling stack stopped with the gate's term", zap.Uint64("term", n))
			}
		}()
		c.setState(def.StateWaitingForCaches)
		// Not the pods: a follower holds none (its patcher reads DPA statuses), and the
		// leader's controller waits for each DPA's namespace to be synced.
		if !c.reqs.DPAs.WaitForSync(term) {
			return
		}
		if err := c.runStack(term); err != nil {
			c.log.Error("autoscaling stack stopped; autoscaling stays off until the gate's next term", zap.Uint64("term", n), zap.Error(err))
		}
	})
}

// runStack builds the parts, runs them until ctx ends and joins them.
func (c *component) runStack(ctx context.Context) error {
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha2.AddToScheme(scheme)); err != nil {
		return fmt.Errorf("event scheme: %w", err)
	}
	// Not ended by ctx: the controller's last reconcile of a term may still record an event
	// after ctx is cancelled, and a broadcaster stopped under it logs an error for each. It is
	// shut down once every part of the term has returned (defers run last-in first-out).
	broadcaster := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.reqs.Kube.CoreV1().Events("")})

	// The scale client and its REST mapper discover lazily, on the first scaling.
	discovery := memory.NewMemCacheClient(c.reqs.Kube.Discovery())
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(discovery)
	scales, err := scale.NewForConfig(c.reqs.RESTConfig, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(discovery))
	if err != nil {
		return fmt.Errorf("scale client: %w", err)
	}

	view := dpaview.New(c.reqs.DPAs.Informer(), c.log.Named("dpaview"))
	skipped := admissiondef.SkippedNamespaces(c.cfg.Admission.ServiceNamespace)
	pods := podwatcher.New(c.reqs.Workloadmeta, func(t def.Target) bool { return len(view.ForTarget(t)) > 0 })
	ctrl, err := controller.New(controller.Options{
		Config: c.cfg.Autoscaling.Workload, OwnNamespace: c.cfg.Admission.ServiceNamespace, Logger: c.log.Named("controller"),
		Kube: c.reqs.Kube, Dynamic: c.reqs.Dynamic, Scales: scales, Mapper: mapper,
		Recorder: broadcaster.NewRecorder(scheme, corev1.EventSource{Component: "lazyscale"}),
		View:     view, Pods: pods, Leader: c.reqs.Leader, Sources: c.reqs.Sources, Now: c.reqs.Now, Metrics: c.ctrlMetrics,
		Scope: c.reqs.Webhook.Scope(),
		// The namespaces the webhook skips hold no pods to collect: their DPAs are refused
		// (NamespaceSkipped) without reading any.
		PodsSynced: func(ns string) bool {
			return slices.Contains(skipped, ns) || c.reqs.Workloadmeta.Synced(wmdef.KindPod, ns)
		},
	})
	if err != nil {
		return err
	}
	// The webhook's entry covers the workloads whose new pods the patcher patches.
	if scope := c.reqs.Webhook.Scope(); scope != nil {
		update := func() {
			targets := view.PatchedTargets()
			ws := make([]admissiondef.Workload, len(targets))
			for i, t := range targets {
				ws[i] = admissiondef.Workload(t)
			}
			scope.Set(ws)
		}
		if err := view.AddHandler(dpaview.Handler{OnChange: func([]string) { update() }, OnRemove: func(int) { update() }}); err != nil {
			return err
		}
		// When the stack stops, the entry is left as it is: a replica taking over in a rolling
		// update finds it in place, and no pod created meanwhile misses the webhook.
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = view.Run(ctx) })
	wg.Go(func() { _ = pods.Run(ctx) })
	// The patcher reads the view: it goes live only once the view holds every DPA, or a new
	// pod of an autoscaled workload would be admitted without its recommendation.
	select {
	case <-view.Synced():
	case <-ctx.Done():
		return nil
	}
	c.parts.Store(&parts{view: view, pods: pods, ctrl: ctrl})
	c.reqs.Webhook.SetPatcher(dpaview.NewPatcher(view))
	c.setState(def.StateRunning)
	c.runningOnce.Do(func() { close(c.running) })
	return ctrl.Run(ctx)
}

func stateNames() []string {
	out := make([]string, len(allStates))
	for i, s := range allStates {
		out[i] = string(s)
	}
	return out
}

func (c *component) setState(s def.State) {
	c.mu.Lock()
	if c.state == s {
		c.mu.Unlock()
		return
	}
	prev := c.state
	c.state, c.since = s, time.Now()
	c.mu.Unlock()
	c.transitions.WithLabelValues(string(s)).Inc()
	for _, st := range allStates {
		v := 0.0
		if st == s {
			v = 1
		}
		c.stateGauge.WithLabelValues(string(st)).Set(v)
	}
	if prev != "" {
		c.log.Info("autoscaling stack state changed", zap.String("from", string(prev)), zap.String("to", string(s)))
	}
}

func (c *component) State() def.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *component) Running() <-chan struct{} { return c.running }

func (c *component) autoscalerCount() int {
	if p := c.parts.Load(); p != nil {
		return p.view.Count()
	}
	return 0
}

func (c *component) status() def.Status {
	c.mu.Lock()
	st := def.Status{State: c.state, Since: c.since, Profiles: def.ProfilesStatus{State: def.ProfilesIdle}}
	c.mu.Unlock()
	if c.enabled {
		st.Profiles = c.profiles.Status()
	}
	if p := c.parts.Load(); p != nil {
		leader, followed := c.reqs.Leader.IsLeader(), p.pods.Followed()
		st.Leader, st.TargetsFollowed = &leader, &followed
	}
	return st
}

// sizes adds up what the running term's parts and the recommendation sources hold.
func (c *component) sizes() map[string]int {
	var sizers []def.Sizer
	if p := c.parts.Load(); p != nil {
		sizers = append(sizers, p.view, p.pods, p.ctrl)
	}
	for _, src := range c.reqs.Sources {
		if s, ok := src.(def.Sizer); ok {
			sizers = append(sizers, s)
		}
	}
	out := map[string]int{}
	for _, s := range sizers {
		maps.Copy(out, s.Sizes())
	}
	return out
}

// report reads the running stack's DPAs, their pods and timelines for the status page. Before
// the stack runs it returns an empty report without touching anything.
func (c *component) report() def.Report {
	p := c.parts.Load()
	if p == nil {
		return def.Report{}
	}
	r := def.Report{Running: true, Leader: c.reqs.Leader.IsLeader(), Timeline: c.cfg.Autoscaling.Workload.Timeline}
	keys := p.view.Keys()
	slices.SortFunc(keys, func(a, b string) int {
		ans, an, _ := strings.Cut(a, "/")
		bns, bn, _ := strings.Cut(b, "/")
		return cmp.Or(strings.Compare(ans, bns), strings.Compare(an, bn))
	})
	now := c.reqs.Now()
	for _, key := range keys {
		dpa := p.view.Get(key)
		if dpa == nil {
			continue // deleted meanwhile
		}
		a := def.AutoscalerReport{DPA: dpa}
		if r.Leader {
			a.Pods = p.pods.PodStates(dpaview.TargetOf(dpa))
			a.Timeline = p.ctrl.Timeline().Get(key, now)
		}
		r.Autoscalers = append(r.Autoscalers, a)
	}
	return r
}
