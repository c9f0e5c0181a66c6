// Package fx provides the workloadmeta store.
package fx

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/comp/workloadmeta/impl"
)

// Module provides def.Component. Subscriptions end when the app stops.
func Module() fx.Option {
	return fx.Module("workloadmeta", fx.Provide(newStore))
}

func newStore(lc fx.Lifecycle, log *zap.Logger, reg prometheus.Registerer) (def.Component, error) {
	p, err := impl.NewComponent(impl.Requires{Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStop: p.Stop})
	return p.Comp, nil
}
