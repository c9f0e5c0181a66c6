// Package fx provides the status server, fed by the "status_sections" and
// "readiness_checks" value groups.
package fx

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/comp/status/impl"
)

// Module provides def.Component.
func Module() fx.Option {
	return fx.Module("status", fx.Provide(newServer))
}

type in struct {
	fx.In
	Lc       fx.Lifecycle
	Config   configdef.Component
	Logger   *zap.Logger
	Gatherer prometheus.Gatherer
	Sections []def.Section `group:"status_sections"`
	Checks   []def.Check   `group:"readiness_checks"`
	// Debug are the components' /debug/ endpoints (status.pprof).
	Debug []def.DebugHandler `group:"debug_handlers"`
	// Kube reviews tokens when status.auth is kubernetes.
	Kube kubernetes.Interface `optional:"true"`
	// Autoscalers feeds /ui with the DPAs; absent in a binary without the autoscaling stack.
	Autoscalers def.AutoscalersReport `optional:"true"`
}

func newServer(i in) (def.Component, error) {
	p, err := impl.NewComponent(impl.Requires{
		Config: i.Config, Logger: i.Logger, Gatherer: i.Gatherer, Sections: i.Sections, Checks: i.Checks, Debug: i.Debug, Kube: i.Kube, Autoscalers: i.Autoscalers,
	})
	if err != nil {
		return nil, err
	}
	i.Lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
	return p.Comp, nil
}
