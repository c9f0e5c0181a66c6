// Package fx provides the admission server. Webhooks join it by providing a def.Webhook into
// the "admission_webhooks" value group.
package fx

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/comp/admission/def"
	"github.com/lazyscale/lazyscale/comp/admission/impl"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
)

// Module provides def.Component and the "webhook" /status section.
func Module() fx.Option {
	return fx.Module("admission", fx.Provide(newServer))
}

type in struct {
	fx.In
	Lc         fx.Lifecycle
	Config     configdef.Component
	Logger     *zap.Logger
	Kube       kubernetes.Interface
	Registerer prometheus.Registerer
	Leader     leaderdef.Component
	Webhooks   []def.Webhook `group:"admission_webhooks"`
}

type out struct {
	fx.Out
	Comp    def.Component
	Section statusdef.Section `group:"status_sections"`
}

func newServer(i in) (out, error) {
	p, err := impl.NewComponent(impl.Requires{
		Config: i.Config, Logger: i.Logger, Kube: i.Kube, Registerer: i.Registerer, Leader: i.Leader, Webhooks: i.Webhooks,
	})
	if err != nil {
		return out{}, err
	}
	i.Lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
	return out{Comp: p.Comp, Section: statusdef.Section{Name: "webhook", Fill: func(d *statusdef.Document) { p.FillStatus(d.WebhookSection()) }}}, nil
}
