// Package fx provides leader election. It is pulled into the graph by whatever writes to the
// cluster (the admission server's registration and certificate, the autoscaling controllers).
package fx

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/leaderelection/def"
	"github.com/lazyscale/lazyscale/comp/leaderelection/impl"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
)

// Module provides def.Component and the "leader" /status section.
func Module() fx.Option {
	return fx.Module("leaderelection", fx.Provide(newComponent))
}

type out struct {
	fx.Out
	Comp    def.Component
	Section statusdef.Section `group:"status_sections"`
}

func newComponent(lc fx.Lifecycle, cfg configdef.Component, log *zap.Logger, kube kubernetes.Interface, reg prometheus.Registerer) (out, error) {
	p, err := impl.NewComponent(impl.Requires{Config: cfg, Logger: log, Kube: kube, Registerer: reg})
	if err != nil {
		return out{}, err
	}
	lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
	return out{Comp: p.Comp, Section: p.Section}, nil
}
