package impl

import (
	"context"

	"go.uber.org/zap"

	"github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	"github.com/lazyscale/lazyscale/fxutil"
)

// Requires is what the autoscaling webhook needs.
type Requires struct {
	Logger *zap.Logger
	Gate   gatedef.Component
}

// Provides is what the autoscaling webhook gives: the component that takes the patcher, and
// the same object as an admission plugin.
type Provides struct {
	Comp    def.Component
	Webhook admissiondef.Webhook
	Start   func(context.Context) error
	Stop    func(context.Context) error
}

// NewComponent builds the webhook. Its registration is wanted once the gate opens. Until the
// autoscaling stack brings its patcher, Start installs the owner patcher once the gate is open
// and the pod collection has synced.
func NewComponent(reqs Requires) (Provides, error) {
	log := reqs.Logger.Named("autoscalingwebhook")
	w := newWebhook(log, reqs.Gate.Enabled())
	var routines fxutil.Routines
	start := func(context.Context) error {
		dpas := reqs.Gate.Autoscalers()
		if dpas == nil {
			return nil // workload autoscaling disabled: the gate never opens
		}
		routines.Go(func(ctx context.Context) {
			if !reqs.Gate.WaitForEnable(ctx) || !reqs.Gate.WaitForPodCollectionSynced(ctx) {
				return
			}
			if !w.PatcherInstalled() {
				w.SetPatcher(&ownerPatcher{dpas: dpas.GetIndexer()})
			}
		})
		return nil
	}
	return Provides{Comp: w, Webhook: w, Start: start, Stop: routines.Stop}, nil
}
