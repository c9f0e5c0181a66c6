// Package controller is the DPA controller: it reconciles each DatadogPodAutoscaler on the
// leader (validation, the recommendation sources, vertical rollouts, horizontal scaling
// through /scale) and writes what it decided into the DPA's status, which every replica's pod
// patcher then applies to new pods.
package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/dpaview"
	"github.com/lazyscale/lazyscale/comp/autoscaling/podwatcher"
	"github.com/lazyscale/lazyscale/comp/autoscaling/timeline"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/core/telemetry"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// Options is everything the controller is built from.
type Options struct {
	Config configdef.WorkloadAutoscalingConfig
	// OwnNamespace is lazyscale's namespace: it does not autoscale itself.
	OwnNamespace string
	Logger       *zap.Logger
	Kube         kubernetes.Interface
	Dynamic      dynamic.Interface
	// Scales reads and writes /scale of any scalable kind, found through Mapper.
	Scales scale.ScalesGetter
	Mapper meta.RESTMapper
	// Recorder records the DPAs' events.
	Recorder record.EventRecorder
	View     *dpaview.View
	Pods     *podwatcher.Watcher
	Leader   leaderdef.Component
	// Sources are the recommendation plugins, in any order.
	Sources []def.RecommendationSource
	// Now is the clock the controller decides by; nil means time.Now.
	Now     func() time.Time
	Metrics *Metrics
	// Scope is what the webhook's entry covers: a rollout waits until its target is covered.
	// Nil: the entry is cluster-wide.
	Scope *admissiondef.NamespaceScope
	// PodsSynced reports whether a namespace's pods are complete in workloadmeta: a DPA is
	// not evaluated before, as its target's pods would look missing. Nil: always.
	PodsSynced func(namespace string) bool
}

// Metrics are the controller's counters, registered once per process (a controller is built
// for each time the stack starts).
type Metrics struct {
	reconciles *prometheus.CounterVec
	rollouts   *prometheus.CounterVec
	scalings   *prometheus.CounterVec
	duration   prometheus.Histogram
}

// NewMetrics registers the controller's counters on reg, each at 0 for both results.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reconciles: telemetry.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_autoscaling_reconciles_total", Help: "DPA reconciliations by result (success, error).",
		}, []string{"result"}, telemetry.Results),
		rollouts: telemetry.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_autoscaling_vertical_rollouts_total", Help: "Vertical rollouts triggered, by result (success, error).",
		}, []string{"result"}, telemetry.Results),
		scalings: telemetry.NewCounterVec(prometheus.CounterOpts{
			Name: "lazyscale_autoscaling_horizontal_scalings_total", Help: "Horizontal scalings through /scale, by result (success, error).",
		}, []string{"result"}, telemetry.Results),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lazyscale_autoscaling_reconcile_duration_seconds",
			Help: "Time to reconcile one DPA: its recommendation sources, its actions and its status write.",
			// From a reconcile answered from caches to one waiting on a slow recommender.
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, c := range []prometheus.Collector{m.reconciles, m.rollouts, m.scalings, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register DPA controller metrics: %w", err)
		}
	}
	return m, nil
}

// Controller reconciles DPAs. It runs only on the leader: each leadership term gets a fresh
// rate-limited queue filled with every DPA, and its workers stop when the term ends.
type Controller struct {
	log          *zap.Logger
	cfg          configdef.WorkloadAutoscalingConfig
	ownNamespace string
	kube         kubernetes.Interface
	dyn          dynamic.Interface
	view         *dpaview.View
	pods         *podwatcher.Watcher
	leader       leaderdef.Component
	sources      []def.RecommendationSource // highest priority first
	recorder     record.EventRecorder
	now          func() time.Time
	scales       scale.ScalesGetter
	mapper       meta.RESTMapper
	metrics      *Metrics
	scope        *admissiondef.NamespaceScope
	podsSynced   func(namespace string) bool

	// history keeps each DPA's recent horizontal recommendations for the stabilization
	// windows. It lives on the leader only; a new leader seeds it with the current count.
	historyMu sync.Mutex
	history   map[string][]timedRecommendation
	// answers caches the sources' answers per DPA.
	answersMu sync.Mutex
	answers   map[string]cachedAnswer
	// mapperResetAt is when the REST mapper last rediscovered.
	mapperMu      sync.Mutex
	mapperResetAt time.Time

	queue atomic.Pointer[workqueue.TypedRateLimitingInterface[string]]

	// failing holds the last error of each DPA whose reconcile fails (logFailure).
	failingMu sync.Mutex
	failing   map[string]string

	// applied is, per DPA, the recommendation version its RecommendationApplied event last
	// reported (recommendationApplied).
	appliedMu sync.Mutex
	applied   map[string]string

	// timeline keeps each DPA's recommendations and replicas over the last hours, for the
	// status page; recorded after each reconcile, so on the leader only.
	timeline *timeline.Timeline
}

// New builds the controller whole and registers its handlers on the view and the pod watcher,
// which must not run yet. Nothing is reconciled before Run.
func New(o Options) (*Controller, error) {
	if o.View == nil || o.Pods == nil || o.Leader == nil || o.Metrics == nil || o.Recorder == nil || o.Scales == nil || o.Mapper == nil {
		return nil, errors.New("DPA controller: view, pods, leader, metrics, recorder, scales and mapper are required")
	}
	sources := slices.Clone(o.Sources)
	slices.SortStableFunc(sources, func(a, b def.RecommendationSource) int { return cmp.Compare(b.Priority(), a.Priority()) })
	c := &Controller{
		log: o.Logger, cfg: o.Config, ownNamespace: o.OwnNamespace, kube: o.Kube, dyn: o.Dynamic,
		view: o.View, pods: o.Pods, leader: o.Leader, sources: sources, recorder: o.Recorder,
		now: o.Now, scales: o.Scales, mapper: o.Mapper, metrics: o.Metrics, scope: o.Scope, podsSynced: o.PodsSynced,
		history: map[string][]timedRecommendation{}, answers: map[string]cachedAnswer{}, failing: map[string]string{}, applied: map[string]string{},
		timeline: timeline.New(o.Config.Timeline),
	}
	if c.now == nil {
		c.now = time.Now
	}
	// Its own status writes echo back as status-only updates: they need no reconcile.
	if err := o.View.AddHandler(dpaview.Handler{OnChange: c.enqueue, IgnoreStatus: true, OnRemove: c.removed, OnOrphan: c.pods.Forget}); err != nil {
		return nil, err
	}
	if err := o.Pods.AddHandler(podwatcher.Handler{OnChange: c.enqueueTarget, OnPatchedPod: c.recommendationApplied}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run waits for the DPA view to sync, then reconciles under each leadership term until ctx
// is done. It returns nil when ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.view.HasSynced) {
		return nil
	}
	for _, src := range c.sources {
		if a, ok := src.(def.Asynchronous); ok {
			defer a.Subscribe(c.answerArrived)()
		}
	}
	leaderdef.WhileLeading(ctx, c.leader, c.runTerm)
	return nil
}

// Sizes implements def.Sizer: the controller's entries per DPA, and its queue.
func (c *Controller) Sizes() map[string]int {
	out := map[string]int{}
	c.historyMu.Lock()
	out["controller.history"] = len(c.history)
	c.historyMu.Unlock()
	c.answersMu.Lock()
	out["controller.answers"] = len(c.answers)
	c.answersMu.Unlock()
	c.failingMu.Lock()
	out["controller.failing"] = len(c.failing)
	c.failingMu.Unlock()
	c.appliedMu.Lock()
	out["controller.applied"] = len(c.applied)
	c.appliedMu.Unlock()
	out["controller.timeline"] = c.timeline.Len()
	if q := c.queue.Load(); q != nil {
		out["controller.queue"] = (*q).Len()
	}
	return out
}

// Timeline is what the controller recorded of each DPA's last hours (the status page's
// charts). It fills on the leader only.
func (c *Controller) Timeline() *timeline.Timeline { return c.timeline }

// removed: a DPA left the view (its target's pods are forgotten by OnOrphan).
func (c *Controller) removed(remaining int) {
	// One held back by the limit may become active.
	if remaining >= c.cfg.Limit {
		c.enqueue(c.view.Keys())
	}
}

// recommendationApplied reports, from the leader, the first pod the webhook patched with each
// recommendation of a DPA: one event per recommendation, not one per pod. client-go's recorder
// lets 25 events per object through and then one every 5 minutes, whatever their reason, so a
// per-pod event would crowd out the DPA's rollout and scaling events after its 25th pod, write
// an Event per pod creation, and fill the recorder's cache with distinct messages. The pods
// themselves carry the version (the rec-id annotation).
func (c *Controller) recommendationApplied(p *wmdef.Pod) {
	if !c.leader.IsLeader() {
		return
	}
	dpa := c.view.Get(p.AutoscalerID)
	if dpa == nil {
		return
	}
	c.appliedMu.Lock()
	first := c.applied[p.AutoscalerID] != p.RecID
	c.applied[p.AutoscalerID] = p.RecID
	c.appliedMu.Unlock()
	if first {
		c.recorder.Eventf(dpa, corev1.EventTypeNormal, "RecommendationApplied", "pod %s is the first created with recommendation %s",
			p.Name, p.RecID)
	}
}

// enqueue adds keys to the current term's queue; without a term (a follower) it does nothing.
func (c *Controller) enqueue(keys []string) {
	if q := c.queue.Load(); q != nil {
		for _, k := range keys {
			(*q).Add(k)
		}
	}
}

// podChangeDelay coalesces the reconciles pod changes cause: a rollout of 100 pods is a few
// reconciles and status writes, not hundreds.
const podChangeDelay = 2 * time.Second

// enqueueTarget re-reconciles, soon, the DPAs of a target whose pods changed.
func (c *Controller) enqueueTarget(t def.Target) {
	q := c.queue.Load()
	if q == nil {
		return
	}
	for _, dpa := range c.view.ForTarget(t) {
		(*q).AddAfter(dpa.Namespace+"/"+dpa.Name, podChangeDelay)
	}
}

// runTerm runs the workers until the leadership term (ctx) ends.
func (c *Controller) runTerm(ctx context.Context) {
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "datadogpodautoscalers"})
	c.queue.Store(&q)
	for _, k := range c.view.KeysNewFirst() {
		q.Add(k)
	}
	c.log.Info("DPA controller started", zap.Int("workers", c.cfg.NumWorkers), zap.Int("autoscalers", q.Len()))
	var wg sync.WaitGroup
	for range c.cfg.NumWorkers {
		wg.Go(func() {
			for c.processNext(ctx, q) {
			}
		})
	}
	<-ctx.Done()
	c.queue.Store(nil)
	q.ShutDown()
	wg.Wait()
	c.log.Info("DPA controller stopped")
}

// logFailure logs a failed reconcile at warn the first time, and again when the error changes;
// retries that fail the same way (an apiserver away fails each one) go to debug, with their
// count. The counter and the DPA's conditions say it all along.
func (c *Controller) logFailure(key string, err error, retries int) {
	c.failingMu.Lock()
	same := c.failing[key] == err.Error()
	c.failing[key] = err.Error()
	c.failingMu.Unlock()
	if same {
		c.log.Debug("reconcile failed again the same way; retrying with backoff", zap.String("dpa", key), zap.Int("retries", retries), zap.Error(err))
		return
	}
	c.log.Warn("reconcile failed; retrying with backoff", zap.String("dpa", key), zap.Int("retries", retries), zap.Error(err))
}

// logRecovery says when a failing DPA reconciles again.
func (c *Controller) logRecovery(key string) {
	c.failingMu.Lock()
	_, was := c.failing[key]
	delete(c.failing, key)
	c.failingMu.Unlock()
	if was {
		c.log.Info("reconcile succeeds again", zap.String("dpa", key))
	}
}

func (c *Controller) processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string]) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	began := time.Now()
	after, err := c.reconcile(ctx, key)
	c.metrics.duration.Observe(time.Since(began).Seconds())
	c.metrics.reconciles.WithLabelValues(telemetry.Result(err)).Inc()
	if err != nil {
		if ctx.Err() == nil {
			c.logFailure(key, err, q.NumRequeues(key))
			q.AddRateLimited(key)
		}
		return true
	}
	c.logRecovery(key)
	q.Forget(key)
	if after > 0 {
		q.AddAfter(key, after)
	}
	return true
}
