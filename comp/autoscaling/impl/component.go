// Package impl implements the autoscaling stack: a typed view of the DPAs kept from the gate's
// shared informer, the pod watcher, the DPA controller (leader only) with its vertical
// actuator, and the pod patcher the webhook uses on every replica.
package impl

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
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
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
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
	Workloadmeta wmdef.Component
	Leader       leaderdef.Component
	Webhook      webhookdef.Component
	Registerer   prometheus.Registerer
	// Sources are the recommendation plugins.
	Sources []def.RecommendationSource
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Provides is what the stack gives.
type Provides struct {
	Comp     def.Component
	Start    func(context.Context) error
	Stop     func(context.Context) error
	Sections []statusdef.Section
}

type component struct {
	log      *zap.Logger
	reqs     Requires
	enabled  bool
	routines lifecycle.Routines

	autoscalers *autoscalers
	pods        *podWatcher
	ctrl        *controller
	profiles    *profileController

	mu          sync.Mutex
	state       def.State
	since       time.Time
	running     chan struct{}
	transitions *prometheus.CounterVec
	stateGauge  *prometheus.GaugeVec
}

var _ def.Component = (*component)(nil)

var allStates = []def.State{def.StateDisabled, def.StateWaitingForGate, def.StateWaitingForPods, def.StateRunning, def.StateStopped}

// NewComponent builds the stack. Nothing runs, lists or watches before the gate opens and
// the pod collection has synced.
func NewComponent(reqs Requires) (Provides, error) {
	cfg := reqs.Config.Get()
	if reqs.Now == nil {
		reqs.Now = time.Now
	}
	c := &component{
		log: reqs.Logger.Named("autoscaling"), reqs: reqs, enabled: cfg.Autoscaling.Workload.Enabled,
		running: make(chan struct{}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_autoscaling_stack_transitions_total",
			Help: "Transitions of the autoscaling stack into each state.",
		}, []string{"state"}),
		stateGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lazyscale_autoscaling_stack_state",
			Help: "1 for the autoscaling stack's current state, 0 for the others.",
		}, []string{"state"}),
	}
	sources := slices.Clone(reqs.Sources)
	slices.SortStableFunc(sources, func(a, b def.RecommendationSource) int { return cmp.Compare(b.Priority(), a.Priority()) })
	c.ctrl = &controller{
		log: c.log.Named("controller"), cfg: cfg.Autoscaling.Workload, ownNamespace: cfg.Admission.ServiceNamespace,
		kube: reqs.Kube, dyn: reqs.Dynamic, sources: sources, now: reqs.Now,
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_autoscaling_reconciles_total", Help: "DPA reconciliations by result.",
		}, []string{"result"}),
		rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_autoscaling_vertical_rollouts_total", Help: "Vertical rollouts triggered, by result.",
		}, []string{"result"}),
		scalings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_autoscaling_horizontal_scalings_total", Help: "Horizontal scalings through /scale, by result.",
		}, []string{"result"}),
		history: map[string][]timedRecommendation{},
		answers: map[string]cachedAnswer{},
	}
	c.profiles = &profileController{
		log: c.log.Named("profiles"), dyn: reqs.Dynamic, md: reqs.Metadata, ownNamespace: cfg.Admission.ServiceNamespace,
		workers: cfg.Autoscaling.Workload.NumWorkers, now: reqs.Now,
		generated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_autoscaling_generated_autoscalers_total", Help: "DPAs created, updated and deleted from cluster profiles.",
		}, []string{"action"}),
	}
	for _, m := range []prometheus.Collector{c.transitions, c.stateGauge, c.ctrl.reconciles, c.ctrl.rollouts, c.ctrl.scalings, c.profiles.generated} {
		if err := reqs.Registerer.Register(m); err != nil {
			return Provides{}, fmt.Errorf("register autoscaling metrics: %w", err)
		}
	}
	initial := def.StateWaitingForGate
	if !c.enabled {
		initial = def.StateDisabled
	}
	c.setState(initial)
	sections := []statusdef.Section{
		{Name: "autoscaling", Value: func() any { return c.status() }},
		{Name: "autoscalers", Value: func() any { return c.autoscalerCount() }},
	}
	return Provides{Comp: c, Start: c.start, Stop: c.stop, Sections: sections}, nil
}

func (c *component) start(context.Context) error {
	if !c.enabled {
		return nil
	}
	c.routines.Go(c.run)
	c.routines.Go(c.runProfiles)
	return nil
}

// runProfiles starts the cluster profile controller once the gate is open, on the leader,
// without waiting for the pod collection: what it generates does not depend on pods.
func (c *component) runProfiles(ctx context.Context) {
	if !c.reqs.Gate.WaitForEnable(ctx) {
		return
	}
	c.profiles.dpas = c.reqs.Gate.Autoscalers()
	if c.profiles.dpas == nil {
		return
	}
	leaderdef.WhileLeading(ctx, c.reqs.Leader, c.profiles.runTerm)
}

func (c *component) stop(ctx context.Context) error {
	err := c.routines.Stop(ctx)
	if c.enabled {
		c.setState(def.StateStopped)
	}
	return err
}

// run is the start order: gate, pod collection, then the stack.
func (c *component) run(ctx context.Context) {
	if !c.reqs.Gate.WaitForEnable(ctx) {
		return
	}
	c.setState(def.StateWaitingForPods)
	if !c.reqs.Gate.WaitForPodCollectionSynced(ctx) {
		return
	}
	informer := c.reqs.Gate.Autoscalers()
	if informer == nil {
		return
	}

	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha2.AddToScheme(scheme)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.reqs.Kube.CoreV1().Events("")})
	c.ctrl.recorder = broadcaster.NewRecorder(scheme, corev1.EventSource{Component: "lazyscale"})

	// The scale client and its REST mapper discover lazily, on the first scaling.
	discovery := memory.NewMemCacheClient(c.reqs.Kube.Discovery())
	c.ctrl.mapper = restmapper.NewDeferredDiscoveryRESTMapper(discovery)
	scales, err := scale.NewForConfig(c.reqs.RESTConfig, c.ctrl.mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(discovery))
	if err != nil {
		c.log.Error("cannot build the scale client; autoscaling stays off", zap.Error(err))
		return
	}
	c.ctrl.scales = scales

	c.autoscalers = newAutoscalers()
	c.pods = newPodWatcher(c.reqs.Workloadmeta)
	c.ctrl.autoscalers, c.ctrl.pods = c.autoscalers, c.pods
	c.autoscalers.onChange = func(keys []string) { c.ctrl.enqueue(keys...) }
	c.autoscalers.onRemove = func(remaining int, target targetKey, orphan bool) {
		if orphan {
			c.pods.forget(target) // nobody autoscales it any more: drop its pods
		}
		// A DPA left: one held back by the limit may become active.
		if remaining >= c.ctrl.cfg.Limit {
			c.ctrl.enqueue(c.autoscalers.keys()...)
		}
	}
	c.autoscalers.onConvertError = func(key string, err error) {
		c.log.Warn("not a valid DatadogPodAutoscaler; ignored", zap.String("autoscaler", key), zap.Error(err))
	}
	c.pods.onChange = c.ctrl.enqueueTarget
	c.pods.onPatchedPod = c.recommendationApplied

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.pods.run(ctx) })
	// The gate's informer: one DPA watch for the trigger, the controller and the patcher.
	reg, err := informer.AddEventHandler(c.autoscalers.handler())
	if err != nil {
		c.log.Error("cannot follow DPAs; autoscaling stays off", zap.Error(err))
		return
	}
	defer func() { _ = informer.RemoveEventHandler(reg) }()
	c.reqs.Webhook.SetPatcher(&podPatcher{autoscalers: c.autoscalers})
	c.setState(def.StateRunning)
	close(c.running)

	leaderdef.WhileLeading(ctx, c.reqs.Leader, c.ctrl.runTerm)
}

// recommendationApplied reports a pod the webhook patched, once, from the leader.
func (c *component) recommendationApplied(p *wmdef.Pod) {
	if !c.reqs.Leader.IsLeader() {
		return
	}
	dpa := c.autoscalers.get(p.Annotations[v1alpha2.AutoscalerIDAnnotation])
	if dpa == nil {
		return
	}
	c.ctrl.recorder.Eventf(dpa, corev1.EventTypeNormal, "RecommendationApplied", "pod %s created with recommendation %s",
		p.Name, p.Annotations[v1alpha2.RecommendationIDAnnotation])
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
	select {
	case <-c.running:
		return c.autoscalers.count()
	default:
		return 0
	}
}

func (c *component) status() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]any{"state": c.state, "since": c.since, "profiles": c.profiles.status()}
	select {
	case <-c.running:
		out["leader"] = c.reqs.Leader.IsLeader()
		out["targets_followed"] = c.pods.followed()
	default:
	}
	return out
}
