// Package fx provides the built-in recommendation sources into the "recommendation_sources"
// value group: manual (force-resources) and external (custom-recommender).
package fx

import (
	"context"

	"go.uber.org/fx"

	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
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

func newSources(lc fx.Lifecycle, cfg configdef.Component) (out, error) {
	ext, err := external.New(cfg.Get().Autoscaling.Workload.ExternalRecommender)
	if err != nil {
		return out{}, err
	}
	lc.Append(fx.StopHook(func(context.Context) error { ext.Close(); return nil }))
	return out{Sources: []def.RecommendationSource{manual.Source{}, ext}}, nil
}
