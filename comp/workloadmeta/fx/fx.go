// Package fx provides the workloadmeta store, and its /debug/pods endpoint.
package fx

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/comp/workloadmeta/impl"
)

// Module provides def.Component. Subscriptions end when the app stops.
func Module() fx.Option {
	return fx.Module("workloadmeta", fx.Provide(newStore))
}

type out struct {
	fx.Out
	Comp  def.Component
	Debug statusdef.DebugHandler `group:"debug_handlers"`
}

func newStore(lc fx.Lifecycle, log *zap.Logger, reg prometheus.Registerer) (out, error) {
	p, err := impl.NewComponent(impl.Requires{Logger: log, Registerer: reg})
	if err != nil {
		return out{}, err
	}
	lc.Append(fx.Hook{OnStop: p.Stop})
	return out{Comp: p.Comp, Debug: statusdef.DebugHandler{Path: "/debug/pods", Handler: podsHandler(p.Comp)}}, nil
}

// HeldPod is one pod of GET /debug/pods.
type HeldPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Phase     string `json:"phase,omitempty"`
	Ready     bool   `json:"ready"`
	RecID     string `json:"rec_id,omitempty"`
}

// podsHandler lists the pods the store holds, by namespace and name: what the agent believes
// is there, to compare with the apiserver (kubectl get pods) when they seem to disagree.
func podsHandler(wm def.Component) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entities := wm.List(def.KindPod)
		pods := make([]HeldPod, 0, len(entities))
		for _, e := range entities {
			p := e.(*def.Pod)
			pods = append(pods, HeldPod{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Phase: p.Phase, Ready: p.Ready, RecID: p.RecID})
		}
		slices.SortFunc(pods, func(a, b HeldPod) int {
			return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
		})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Pods []HeldPod `json:"pods"`
		}{pods})
	})
}
