package impl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/metadata"

	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	dpacachedef "github.com/lazyscale/lazyscale/comp/dpacache/def"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// processStart approximates the process start time: package initialisation runs before main.
// gate_open_seconds is measured from it.
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
	watches             []*labelWatch
	routines            lifecycle.Routines
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
	c := &component{
		log:                 reqs.Logger.Named("autoscalinggate"),
		workloadAutoscaling: reqs.Config.Get().Autoscaling.Workload.Enabled,
	}
	openGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lazyscale_autoscaling_gate_open",
		Help: "1 once the autoscaling gate is open, else 0.",
	})
	openSeconds := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lazyscale_autoscaling_gate_open_seconds",
		Help: "Seconds from process start to the opening of the autoscaling gate; 0 while closed.",
	})
	for _, m := range []prometheus.Collector{openGauge, openSeconds} {
		if err := reqs.Registerer.Register(m); err != nil {
			return Provides{}, fmt.Errorf("register gate metrics: %w", err)
		}
	}
	c.gate = newGate(now, func(t def.Trigger, at time.Time) {
		openGauge.Set(1)
		openSeconds.Set(at.Sub(processStart).Seconds())
		c.log.Info("autoscaling gate opened", zap.Stringer("trigger", t),
			zap.Duration("since_start", at.Sub(processStart)))
	})
	if c.workloadAutoscaling {
		if err := openOnDPA(reqs.DPAs.Informer(), c.Open); err != nil {
			return Provides{}, err
		}
		c.watches = newLabelWatches(reqs.Metadata, c.log, c.Open)
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
	return s
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
