// Package fx provides the DPA cache. Its informer runs with the app when workload
// autoscaling is enabled.
package fx

import (
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/dpacache/def"
	"github.com/lazyscale/lazyscale/comp/dpacache/impl"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
)

// Module provides def.Component and a readiness check.
func Module() fx.Option {
	return fx.Module("dpacache", fx.Provide(newComponent))
}

type out struct {
	fx.Out
	Comp  def.Component
	Check statusdef.Check `group:"readiness_checks"`
}

func newComponent(lc fx.Lifecycle, cfg configdef.Component, log *zap.Logger, dyn dynamic.Interface) (out, error) {
	p, err := impl.NewComponent(impl.Requires{Config: cfg, Logger: log, Dynamic: dyn})
	if err != nil {
		return out{}, err
	}
	lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
	return out{Comp: p.Comp, Check: statusdef.Check{Name: "dpacache", Ready: p.Ready}}, nil
}
