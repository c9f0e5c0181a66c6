// Package fx provides the kube-apiserver pod collector. Nothing needs to depend on it: a
// bundle requires the Collector marker so the collector is built in every binary that
// includes the bundle.
package fx

import (
	"context"
	"slices"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	dpacachedef "github.com/lazyscale/lazyscale/comp/dpacache/def"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"

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
	DPAs   dpacachedef.Component
	Leader leaderdef.Component `optional:"true"`
}

type out struct {
	fx.Out
	Collector Collector
	Section   statusdef.Section `group:"status_sections"`
	Check     statusdef.Check   `group:"readiness_checks"`
}

func newCollector(i in) (out, error) {
	var scope impl.Scope
	if inf := i.DPAs.Informer(); inf != nil {
		scope = &dpaNamespaces{dpas: i.DPAs, informer: inf, skipped: admissiondef.SkippedNamespaces(i.Config.Get().Admission.ServiceNamespace), log: i.Logger}
	}
	p, err := impl.NewComponent(impl.Requires{Config: i.Config, Logger: i.Logger, Kube: i.Kube, Gate: i.Gate, Store: i.Store, Scope: scope, Leader: i.Leader})
	if err != nil {
		return out{}, err
	}
	i.Lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
	return out{
		Section: statusdef.Section{Name: "pod_collection", Fill: func(d *statusdef.Document) { st := p.Status(); d.PodCollection = &st }},
		Check:   statusdef.Check{Name: "podcollector", Ready: p.Ready},
	}, nil
}

// dpaNamespaces is the collection's scope: the namespaces that hold a DPA, read from the DPA
// cache's namespace index. A profile-labelled workload counts once its DPA is generated; the
// namespaces the webhook skips (kube-system, lazyscale's own) never do, as their DPAs are
// refused.
type dpaNamespaces struct {
	dpas     dpacachedef.Component
	informer cache.SharedIndexInformer
	skipped  []string
	log      *zap.Logger
}

func (s *dpaNamespaces) WaitForSync(ctx context.Context) bool { return s.dpas.WaitForSync(ctx) }

func (s *dpaNamespaces) Namespaces() []string {
	idx := s.informer.GetIndexer()
	var out []string
	for _, ns := range idx.ListIndexFuncValues(cache.NamespaceIndex) {
		if slices.Contains(s.skipped, ns) {
			continue
		}
		if objs, err := idx.ByIndex(cache.NamespaceIndex, ns); err == nil && len(objs) > 0 {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

// OnChange: a namespace gains its first DPA or loses its last on an add or a delete; an
// update never moves a DPA.
func (s *dpaNamespaces) OnChange(f func()) {
	_, err := s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { f() },
		DeleteFunc: func(any) { f() },
	})
	if err != nil {
		// Only a stopped informer refuses a handler, and it stops with the process.
		s.log.Error("pod collection cannot follow the DPAs' namespaces", zap.Error(err))
	}
}
