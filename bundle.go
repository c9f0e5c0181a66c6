// Package lazyscale exposes the whole agent as one fx.Options bundle, so that a larger agent
// binary can compose it; cmd/lazyscale is one such binary.
package lazyscale

import (
	"go.uber.org/fx"

	autoscalingwebhookfx "github.com/lazyscale/lazyscale/comp/admission/autoscaling/fx"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	admissionfx "github.com/lazyscale/lazyscale/comp/admission/fx"
	autoscalingdef "github.com/lazyscale/lazyscale/comp/autoscaling/def"
	autoscalingfx "github.com/lazyscale/lazyscale/comp/autoscaling/fx"
	recommendersfx "github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/fx"
	gatefx "github.com/lazyscale/lazyscale/comp/autoscalinggate/fx"
	configfx "github.com/lazyscale/lazyscale/comp/core/config/fx"
	logfx "github.com/lazyscale/lazyscale/comp/core/log/fx"
	telemetryfx "github.com/lazyscale/lazyscale/comp/core/telemetry/fx"
	kubeclientfx "github.com/lazyscale/lazyscale/comp/kubeclient/fx"
	leaderelectionfx "github.com/lazyscale/lazyscale/comp/leaderelection/fx"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	statusfx "github.com/lazyscale/lazyscale/comp/status/fx"
	podcollectorfx "github.com/lazyscale/lazyscale/comp/workloadmeta/collectors/kubeapiserver/fx"
	wmfx "github.com/lazyscale/lazyscale/comp/workloadmeta/fx"
)

// Bundle is the lazyscale agent. The including binary supplies configdef.Params (and, if it
// wants fx's events in the agent's log, logfx.FxEvents()).
//
// What pulls the gate into the graph: the invoked pod collector requires it (to wait for it),
// the invoked admission server requires every webhook, the autoscaling one among them, which
// requires the gate, the invoked autoscaling stack requires the gate (it waits for it), and the
// invoked status server requires every /status section. The gate's trigger watches therefore
// always start with the app when workload autoscaling is enabled; everything heavy waits
// behind the gate.
func Bundle() fx.Option {
	return fx.Options(
		configfx.Module(),
		logfx.Module(),
		telemetryfx.Module(),
		kubeclientfx.Module(),
		leaderelectionfx.Module(),
		gatefx.Module(),
		wmfx.Module(),
		podcollectorfx.Module(),
		admissionfx.Module(),
		autoscalingwebhookfx.Module(),
		autoscalingfx.Module(),
		recommendersfx.Module(),
		statusfx.Module(),
		fx.Invoke(func(statusdef.Component, podcollectorfx.Collector, admissiondef.Component, autoscalingdef.Component) {
		}),
	)
}
