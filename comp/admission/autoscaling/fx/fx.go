// Package fx provides the autoscaling webhook as def.Component (for whoever brings a patcher)
// and as an admission plugin in the "admission_webhooks" group.
package fx

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/admission/autoscaling/impl"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// Module provides def.Component and an admission webhook.
func Module() fx.Option {
	return fx.Module("autoscalingwebhook", fx.Provide(newWebhook))
}

type out struct {
	fx.Out
	Comp def.Component
	// Webhooks is empty when workload autoscaling is disabled: there is then nothing to serve.
	Webhooks []admissiondef.Webhook `group:"admission_webhooks,flatten"`
}

func newWebhook(log *zap.Logger, gate gatedef.Component, cfg configdef.Component) (out, error) {
	p, err := impl.NewComponent(impl.Requires{Logger: log, Gate: gate})
	if err != nil {
		return out{}, err
	}
	o := out{Comp: p.Comp}
	if cfg.Get().Autoscaling.Workload.Enabled {
		o.Webhooks = []admissiondef.Webhook{p.Webhook}
	}
	return o, nil
}
