// Package fx provides the autoscaling gate. Its trigger watches start with the app and stop
// with it; the gate itself is injected into whatever waits on it (the deferred pod collector,
// the autoscaling stack, the webhook's registration).
package fx

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/metadata"

	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	"github.com/lazyscale/lazyscale/comp/autoscalinggate/impl"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	dpacachedef "github.com/lazyscale/lazyscale/comp/dpacache/def"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
)

// Module provides def.Component, the "gate" /status section and a readiness check.
func Module() fx.Option {
	return fx.Module("autoscalinggate", fx.Provide(newComponent))
}

type in struct {
	fx.In
	Lc         fx.Lifecycle
	Config     configdef.Component
	Logger     *zap.Logger
	DPAs       dpacachedef.Component
	Metadata   metadata.Interface
	Registerer prometheus.Registerer
}

type out struct {
	fx.Out
	Comp    def.Component
	Section statusdef.Section `group:"status_sections"`
	Check   statusdef.Check   `group:"readiness_checks"`
}

func newComponent(i in) (out, error) {
	p, err := impl.NewComponent(impl.Requires{
		Config: i.Config, Logger: i.Logger, DPAs: i.DPAs, Metadata: i.Metadata, Registerer: i.Registerer,
	})
	if err != nil {
		return out{}, err
	}
	i.Lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
	return out{
		Comp:    p.Comp,
		Section: statusdef.Section{Name: "gate", Fill: func(d *statusdef.Document) { st := p.Status(); d.Gate = &st }},
		Check:   statusdef.Check{Name: "autoscalinggate", Ready: p.Ready},
	}, nil
}
