package impl

import (
	"context"

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
	// MatchWorkloads narrows the entry with match conditions to the pods of the active DPAs'
	// targets (admission.scope workloads), while there are at most MaxWorkloads of them.
	MatchWorkloads bool
	MaxWorkloads   int
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
		if reqs.MatchWorkloads {
			scope.MatchWorkloads(reqs.MaxWorkloads, WorkloadConditions)
		}
	}
	w := newWebhook(reqs.Logger.Named("autoscalingwebhook"), gateTerms{reqs.Gate}, scope)
	return Provides{Comp: w, Webhook: w}, nil
}

// gateTerms wants the entry while the gate is open: from each term's start to its end.
type gateTerms struct{ gate gatedef.Component }

func (g gateTerms) Await(ctx context.Context) (<-chan struct{}, bool) {
	term, _, leave, ok := g.gate.Join(ctx)
	if !ok {
		return nil, false
	}
	leave() // the registration follows the term; it holds no work the term must wait for
	return term.Done(), true
}
