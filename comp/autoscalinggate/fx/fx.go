// Package fx provides the autoscaling gate. Its trigger watches start with the app and stop
// with it; the gate itself is injected into whatever waits on it (the deferred pod collector,
// later the autoscaling controllers and the webhook patcher).
package fx

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"

	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	"github.com/lazyscale/lazyscale/comp/autoscalinggate/impl"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
)

// Module provides def.Component, a /status section and a readiness check.
func Module() fx.Option {
	return fx.Module("autoscalinggate", fx.Provide(newComponent))
}

type in struct {
	fx.In
	Lc         fx.Lifecycle
	Config     configdef.Component
	Logger     *zap.Logger
	Dynamic    dynamic.Interface
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
		Config: i.Config, Logger: i.Logger, Dynamic: i.Dynamic, Metadata: i.Metadata, Registerer: i.Registerer,
	})
	if err != nil {
		return out{}, err
	}
	i.Lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
	return out{Comp: p.Comp, Section: p.Section, Check: p.Check}, nil
}
