// Package fx provides the built-in recommendation sources into the "recommendation_sources"
// value group: manual (force-resources, force-replicas), external (custom-recommender) and
// local (metrics.k8s.io, unless autoscaling.workload.local_recommender.enabled is false).
package fx

import (
	"context"
	"fmt"

	"go.uber.org/fx"
	"k8s.io/client-go/rest"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/local"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/manual"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// Module provides the built-in sources.
func Module() fx.Option {
	return fx.Module("recommenders", fx.Provide(newSources))
}

type out struct {
	fx.Out
	Sources []def.RecommendationSource `group:"recommendation_sources,flatten"`
}

func newSources(lc fx.Lifecycle, cfg configdef.Component, rc *rest.Config) (out, error) {
	w := cfg.Get().Autoscaling.Workload
	ext, err := external.New(w.ExternalRecommender)
	if err != nil {
		return out{}, err
	}
	lc.Append(fx.StopHook(func(context.Context) error { ext.Close(); return nil }))
	sources := []def.RecommendationSource{manual.Source{}, ext}
	if w.LocalRecommender.Enabled {
		// The client contacts nothing until the first recommendation is asked for.
		mc, err := metricsclient.NewForConfig(rc)
		if err != nil {
			return out{}, fmt.Errorf("metrics.k8s.io client: %w", err)
		}
		sources = append(sources, local.New(mc.MetricsV1beta1(), nil))
	}
	return out{Sources: sources}, nil
}
