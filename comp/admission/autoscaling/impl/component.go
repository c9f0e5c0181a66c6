package impl

import (
	"go.uber.org/zap"

	"github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
)

// Requires is what the autoscaling webhook needs.
type Requires struct {
	Logger *zap.Logger
	Gate   gatedef.Component
	// ClusterWide registers the entry for every namespace (admission.scope cluster) instead
	// of the namespaces that hold an active DPA.
	ClusterWide bool
}

// Provides is what the autoscaling webhook gives: the component that takes the patcher, and
// the same object as an admission plugin.
type Provides struct {
	Comp    def.Component
	Webhook admissiondef.Webhook
}

// NewComponent builds the webhook. Its registration is wanted once the gate opens; its
// patcher comes from the autoscaling stack once that runs. Until then it admits pods
// unchanged without decoding them.
func NewComponent(reqs Requires) (Provides, error) {
	var scope *admissiondef.NamespaceScope
	if !reqs.ClusterWide {
		scope = admissiondef.NewNamespaceScope()
	}
	w := newWebhook(reqs.Logger.Named("autoscalingwebhook"), reqs.Gate.Opened(), scope)
	return Provides{Comp: w, Webhook: w}, nil
}
