package fx

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/fx"
	"go.uber.org/goleak"

	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type sources struct {
	fx.In
	All []def.RecommendationSource `group:"recommendation_sources"`
}

func names(s sources) []string {
	var out []string
	for _, src := range s.All {
		out = append(out, src.Name())
	}
	return out
}

func TestModule(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, nil)
	got := fxutiltest.Component[sources](t, core, Module())
	assert.ElementsMatch(t, []string{"manual", "external", "local"}, names(got))
}

func TestModuleWithoutLocal(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, map[string]string{"autoscaling.workload.local_recommender.enabled": "false"})
	got := fxutiltest.Component[sources](t, core, Module())
	assert.ElementsMatch(t, []string{"manual", "external"}, names(got))
}
