package impl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	dpacachedef "github.com/lazyscale/lazyscale/comp/dpacache/def"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// processStart approximates the process start time: package initialisation runs before main.
// The gate's opening is logged with the time since it.
var processStart = time.Now()

// Requires is what the gate component needs.
type Requires struct {
	Config configdef.Component
	Logger *zap.Logger
	// DPAs is the shared DPA cache: its first object opens the gate.
	DPAs       dpacachedef.Component
	Metadata   metadata.Interface
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Provides is what the gate component gives. Start and Stop are the lifecycle hooks, Status
// the /status section's value, Ready the readiness check.
type Provides struct {
	Comp   def.Component
	Start  func(context.Context) error
	Stop   func(context.Context) error
	Status func() def.Status
	Ready  func() error
}

type component struct {
	*gate
	log                 *zap.Logger
	workloadAutoscaling bool
	idleGrace           time.Duration
	dpas                cache.SharedIndexInformer
	watches             []*labelWatch
	routines            lifecycle.Routines
	// changed wakes the idle monitor: a trigger came or went.
	changed  chan struct{}
	closesAt prometheus.Gauge
}

var _ def.Component = (*component)(nil)

// NewComponent builds the gate and, when workload autoscaling is enabled, its trigger: a
// handler on the shared DPA cache and the label watches. Nothing talks to the apiserver
// before Start.
func NewComponent(reqs Requires) (Provides, error) {
	now := reqs.Now
	if now == nil {
		now = time.Now
	}
	cfg := reqs.Config.Get().Autoscaling.Workload
	c := &component{
		log:                 reqs.Logger.Named("autoscalinggate"),
		workloadAutoscaling: cfg.Enabled,
		idleGrace:           cfg.IdleGrace,
		changed:             make(chan struct{}, 1),
	}
	openGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lazyscale_autoscaling_gate_open",
		Help: "1 while the autoscaling gate is open, else 0.",
	})
	openedAt := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lazyscale_autoscaling_gate_opened_timestamp_seconds",
		Help: "When the current (or last) term of the autoscaling gate opened (Unix time); 0 before the first.",
	})
	termGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lazyscale_autoscaling_gate_term",
		Help: "The autoscaling gate's current term, or its last one while closed (0: never opened).",
	})
	c.closesAt = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lazyscale_autoscaling_gate_closes_at_timestamp_seconds",
		Help: "When the autoscaling gate closes if no trigger comes back (Unix time); 0 while a trigger exists or the gate is closed.",
	})
	for _, m := range []prometheus.Collector{openGauge, openedAt, termGauge, c.closesAt} {
		if err := reqs.Registerer.Register(m); err != nil {
			return Provides{}, fmt.Errorf("register gate metrics: %w", err)
		}
	}
	c.gate = newGate(now, func(t def.Trigger, at time.Time, term uint64) {
		openGauge.Set(1)
		openedAt.Set(float64(at.UnixNano()) / 1e9)
		termGauge.Set(float64(term))
		c.log.Info("autoscaling gate opened", zap.Uint64("term", term), zap.Stringer("trigger", t),
			zap.Duration("since_start", at.Sub(processStart)))
		c.poke()
	}, func(term uint64, at time.Time) {
		openGauge.Set(0)
		c.log.Info("autoscaling gate closed: no trigger left; the stack goes back to dormant", zap.Uint64("term", term),
			zap.Duration("idle_grace", c.idleGrace))
	})
	if c.workloadAutoscaling {
		c.dpas = reqs.DPAs.Informer()
		if err := openOnDPA(c.dpas, c.Open, c.poke); err != nil {
			return Provides{}, err
		}
		c.watches = newLabelWatches(reqs.Metadata, c.log, c.Open, c.poke)
	}
	return Provides{Comp: c, Start: c.start, Stop: c.stop, Status: c.Status, Ready: c.ready}, nil
}

func (c *component) start(context.Context) error {
	if !c.workloadAutoscaling {
		c.log.Info("workload autoscaling disabled; no trigger watches")
		return nil
	}
	for _, w := range c.watches {
		c.routines.Go(w.informer.RunWithContext)
	}
	if c.idleGrace > 0 {
		c.routines.Go(c.monitor)
	}
	c.log.Info("watching for autoscaling triggers", zap.String("selector", profileSelector()))
	return nil
}

// stop is idempotent and safe without start.
func (c *component) stop(ctx context.Context) error {
	if err := c.routines.Stop(ctx); err != nil {
		return fmt.Errorf("stop trigger watches: %w", err)
	}
	return nil
}

func (c *component) Status() def.Status {
	s := c.snapshot()
	s.WorkloadAutoscaling = c.workloadAutoscaling
	if c.workloadAutoscaling {
		s.IdleGrace = c.idleGrace.String()
	}
	return s
}

// poke wakes the idle monitor; it never blocks.
func (c *component) poke() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// present reports whether any trigger exists: a DPA, or a workload or namespace labelled for
// a profile, in the caches the trigger watches already keep.
func (c *component) present() bool {
	if c.dpas != nil && len(c.dpas.GetStore().ListKeys()) > 0 {
		return true
	}
	for _, w := range c.watches {
		if len(w.informer.GetStore().ListKeys()) > 0 {
			return true
		}
	}
	return false
}

// countdown shows when the gate closes (zero: it does not) on /status and in the metrics.
func (c *component) countdown(at time.Time) {
	c.setClosesAt(at)
	if at.IsZero() {
		c.closesAt.Set(0)
	} else {
		c.closesAt.Set(float64(at.Unix()))
	}
}

// monitor closes the gate once no trigger has existed for idle_grace. A trigger coming back
// meanwhile cancels the countdown; one coming after reopens the gate (the watches' Open).
func (c *component) monitor(ctx context.Context) {
	var timer *time.Timer
	var fire <-chan time.Time
	stop := func() {
		if timer != nil {
			timer.Stop()
		}
		timer, fire = nil, nil
		c.countdown(time.Time{})
	}
	defer stop()
	for {
		switch {
		case !c.IsOpen() || c.present():
			stop()
		case timer == nil:
			at := c.now().Add(c.idleGrace)
			timer = time.NewTimer(c.idleGrace)
			fire = timer.C
			c.countdown(at)
			c.log.Info("no autoscaling trigger left; the gate closes unless one comes back", zap.Time("closes_at", at),
				zap.Duration("idle_grace", c.idleGrace))
		}
		select {
		case <-ctx.Done():
			return
		case <-c.changed:
		case <-fire:
			timer, fire = nil, nil
			if !c.present() {
				c.Close()
			}
			c.countdown(time.Time{})
		}
	}
}

// ready: the label watches have synced (or their resource is not served). The DPA cache
// reports its own readiness.
func (c *component) ready() error {
	var pending []string
	for _, w := range c.watches {
		if !w.informer.HasSynced() && !w.errs.NotServed() {
			pending = append(pending, w.kind)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("trigger watches not synced: %s", strings.Join(pending, ", "))
	}
	return nil
}
