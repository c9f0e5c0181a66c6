// Package fx provides the kube-apiserver pod collector. Nothing needs to depend on it: a
// bundle requires the Collector marker so the collector is built in every binary that
// includes the bundle.
package fx

import (
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/comp/workloadmeta/collectors/kubeapiserver/impl"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// Collector is the marker type a binary requires to pull the pod collector into its graph.
type Collector struct{}

// Module provides Collector, the "pod_collection" /status section and a readiness check.
func Module() fx.Option {
	return fx.Module("podcollector", fx.Provide(newCollector))
}

type in struct {
	fx.In
	Lc     fx.Lifecycle
	Config configdef.Component
	Logger *zap.Logger
	Kube   kubernetes.Interface
	Gate   gatedef.Component
	Store  wmdef.Component
}

type out struct {
	fx.Out
	Collector Collector
	Section   statusdef.Section `group:"status_sections"`
	Check     statusdef.Check   `group:"readiness_checks"`
}

func newCollector(i in) (out, error) {
	p, err := impl.NewComponent(impl.Requires{Config: i.Config, Logger: i.Logger, Kube: i.Kube, Gate: i.Gate, Store: i.Store})
	if err != nil {
		return out{}, err
	}
	i.Lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
	return out{
		Section: statusdef.Section{Name: "pod_collection", Fill: func(d *statusdef.Document) { st := p.Status(); d.PodCollection = &st }},
		Check:   statusdef.Check{Name: "podcollector", Ready: p.Ready},
	}, nil
}
