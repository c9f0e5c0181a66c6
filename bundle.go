// Package lazyscale exposes the agent as fx.Options, so that a larger agent binary can
// compose it. Two bundles:
//
//   - Feature is what lazyscale owns: workload autoscaling (leader election, the DPA cache,
//     the gate, workloadmeta and its pod collector, the admission server and its autoscaling
//     webhook, the autoscaling stack and its recommenders, the status server). It provides
//     none of what a host may already have.
//   - Core is what Feature needs and a host may bring instead: the config component (from
//     configdef.Params), a *zap.Logger, the Kubernetes clients (*rest.Config,
//     kubernetes.Interface, dynamic.Interface, metadata.Interface) and a Prometheus registry
//     (prometheus.Registerer and prometheus.Gatherer).
//
// cmd/lazyscale is Core and Feature; examples/embed is a host with its own logger, client and
// registry that includes Feature alone.
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
	dpacachefx "github.com/lazyscale/lazyscale/comp/dpacache/fx"
	kubeclientfx "github.com/lazyscale/lazyscale/comp/kubeclient/fx"
	leaderelectionfx "github.com/lazyscale/lazyscale/comp/leaderelection/fx"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	statusfx "github.com/lazyscale/lazyscale/comp/status/fx"
	podcollectorfx "github.com/lazyscale/lazyscale/comp/workloadmeta/collectors/kubeapiserver/fx"
	wmfx "github.com/lazyscale/lazyscale/comp/workloadmeta/fx"
)

// Bundle is the whole agent: Core and Feature. The including binary supplies
// configdef.Params (and, if it wants fx's events in the agent's log, logfx.FxEvents()).
func Bundle() fx.Option {
	return fx.Options(Core(), Feature())
}

// Core provides the config component (from a supplied configdef.Params), the logger, the
// Kubernetes clients and the metrics registry. A host that has its own provides those types
// itself and leaves Core out (or takes the parts it lacks: configfx.Module() alone, say).
func Core() fx.Option {
	return fx.Options(
		configfx.Module(),
		logfx.Module(),
		telemetryfx.Module(),
		kubeclientfx.Module(),
	)
}

// Feature is workload autoscaling. It requires configdef.Component, *zap.Logger,
// *rest.Config, kubernetes.Interface, dynamic.Interface, metadata.Interface,
// prometheus.Registerer and prometheus.Gatherer, and provides nothing a host may already
// have.
//
// What pulls the gate into the graph: the invoked pod collector requires it (to wait for it),
// the invoked admission server requires every webhook, the autoscaling one among them, which
// requires the gate, the invoked autoscaling stack requires the gate (it waits for it), and the
// invoked status server requires every /status section. The gate's trigger watches therefore
// always start with the app when workload autoscaling is enabled; everything heavy waits
// behind the gate.
func Feature() fx.Option {
	return fx.Options(
		telemetryfx.Metrics(),
		leaderelectionfx.Module(),
		dpacachefx.Module(),
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
