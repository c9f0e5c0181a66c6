// Package fx provides the autoscaling stack. It is pulled into the graph by the bundle's
// invoke; it starts nothing before the gate opens, and its controllers nothing before the pod
// collection and the DPA cache have synced. Recommendation
// sources join it through the "recommendation_sources" value group.
package fx

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	webhookdef "github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/impl"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	dpacachedef "github.com/lazyscale/lazyscale/comp/dpacache/def"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// Module provides def.Component and the "autoscaling" and "autoscalers" /status sections.
func Module() fx.Option {
	return fx.Module("autoscaling", fx.Provide(newComponent))
}

type in struct {
	fx.In
	Lc           fx.Lifecycle
	Config       configdef.Component
	Logger       *zap.Logger
	Kube         kubernetes.Interface
	Dynamic      dynamic.Interface
	Metadata     metadata.Interface
	RESTConfig   *rest.Config
	Gate         gatedef.Component
	DPAs         dpacachedef.Component
	Workloadmeta wmdef.Component
	Leader       leaderdef.Component
	Webhook      webhookdef.Component
	Registerer   prometheus.Registerer
	Sources      []def.RecommendationSource `group:"recommendation_sources"`
	Clock        def.Clock                  `optional:"true"`
}

type out struct {
	fx.Out
	Comp     def.Component
	Sections []statusdef.Section    `group:"status_sections,flatten"`
	Debug    statusdef.DebugHandler `group:"debug_handlers"`
	Report   statusdef.AutoscalersReport
}

func newComponent(i in) (out, error) {
	p, err := impl.NewComponent(impl.Requires{
		Config: i.Config, Logger: i.Logger, Kube: i.Kube, Dynamic: i.Dynamic, Metadata: i.Metadata, RESTConfig: i.RESTConfig, Gate: i.Gate, DPAs: i.DPAs, Workloadmeta: i.Workloadmeta,
		Leader: i.Leader, Webhook: i.Webhook, Registerer: i.Registerer, Sources: i.Sources, Now: i.Clock,
	})
	if err != nil {
		return out{}, err
	}
	i.Lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
	return out{Comp: p.Comp, Sections: []statusdef.Section{
		{Name: "autoscaling", Fill: func(d *statusdef.Document) { st := p.Status(); d.Autoscaling = &st }},
		{Name: "autoscalers", Fill: func(d *statusdef.Document) { n := p.Autoscalers(); d.Autoscalers = &n }},
	}, Debug: statusdef.DebugHandler{Path: "/debug/autoscaling", Handler: sizesHandler(p.Sizes)},
		Report: p.Report}, nil
}

// sizesHandler serves GET /debug/autoscaling: how many entries each part of the stack holds
// (per DPA, per workload, per endpoint), to check that a deleted DPA leaves nothing behind.
func sizesHandler(sizes func() map[string]int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Sizes map[string]int `json:"sizes"`
		}{sizes()})
	})
}
