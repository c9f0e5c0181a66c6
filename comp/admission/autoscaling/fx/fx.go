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
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
)

// Module provides def.Component, an admission webhook and its field of the "webhook" /status
// section.
func Module() fx.Option {
	return fx.Module("autoscalingwebhook", fx.Provide(newWebhook))
}

type out struct {
	fx.Out
	Comp def.Component
	// Webhooks is empty when workload autoscaling is disabled: there is then nothing to serve.
	Webhooks []admissiondef.Webhook `group:"admission_webhooks,flatten"`
	Section  statusdef.Section      `group:"status_sections"`
}

func newWebhook(log *zap.Logger, gate gatedef.Component, cfg configdef.Component) (out, error) {
	a := cfg.Get().Admission
	p, err := impl.NewComponent(impl.Requires{Logger: log, Gate: gate, ClusterWide: a.Scope == configdef.ScopeCluster,
		MatchWorkloads: a.Scope == configdef.ScopeWorkloads, MaxWorkloads: a.ScopeWorkloadsMax})
	if err != nil {
		return out{}, err
	}
	o := out{Comp: p.Comp, Section: statusdef.Section{Name: "webhook.patcher_installed", Fill: func(d *statusdef.Document) {
		d.WebhookSection().PatcherInstalled = p.Comp.PatcherInstalled()
		d.WebhookSection().Scope = p.Comp.Scope().Status()
	}}}
	if cfg.Get().Autoscaling.Workload.Enabled {
		o.Webhooks = []admissiondef.Webhook{p.Webhook}
	}
	return o, nil
}
