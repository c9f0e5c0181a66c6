// Package impl implements the DPA cache.
package impl

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/dpacache/def"
	"github.com/lazyscale/lazyscale/comp/kubeclient/informer"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// Requires is what the DPA cache needs.
type Requires struct {
	Config  configdef.Component
	Logger  *zap.Logger
	Dynamic dynamic.Interface
}

// Provides is what the DPA cache gives. Ready is its readiness check.
type Provides struct {
	Comp  def.Component
	Start func(context.Context) error
	Stop  func(context.Context) error
	Ready func() error
}

type dpaCache struct {
	log      *zap.Logger
	informer cache.SharedIndexInformer // nil when disabled
	errs     *informer.WatchErrors
	routines lifecycle.Routines
}

var _ def.Component = (*dpaCache)(nil)

// NewComponent builds the informer when workload autoscaling is enabled. Nothing talks to the
// apiserver before Start.
func NewComponent(reqs Requires) (Provides, error) {
	c := &dpaCache{log: reqs.Logger.Named("dpacache")}
	if reqs.Config.Get().Autoscaling.Workload.Enabled {
		c.errs = informer.NewWatchErrors(c.log, "DatadogPodAutoscaler")
		lw := informer.Dynamic(reqs.Dynamic.Resource(v1alpha2.DatadogPodAutoscalersResource), informer.Options{})
		c.informer = informer.New(lw, &unstructured.Unstructured{},
			cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, c.errs)
	}
	return Provides{Comp: c, Start: c.start, Stop: c.stop, Ready: c.ready}, nil
}

func (c *dpaCache) start(context.Context) error {
	if c.informer != nil {
		c.routines.Go(c.informer.RunWithContext)
	}
	return nil
}

// stop is idempotent and safe without start.
func (c *dpaCache) stop(ctx context.Context) error {
	if err := c.routines.Stop(ctx); err != nil {
		return fmt.Errorf("stop DPA informer: %w", err)
	}
	return nil
}

func (c *dpaCache) Informer() cache.SharedIndexInformer { return c.informer }

func (c *dpaCache) WaitForSync(ctx context.Context) bool {
	if c.informer == nil {
		return false
	}
	return cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced)
}

// ready is true once synced, or while DPAs are not served at all: a cluster without the CRD
// is a healthy, dormant cluster.
func (c *dpaCache) ready() error {
	if c.informer == nil || c.informer.HasSynced() || c.errs.NotServed() {
		return nil
	}
	return errors.New("DatadogPodAutoscaler cache not synced")
}
