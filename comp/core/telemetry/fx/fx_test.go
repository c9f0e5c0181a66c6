package fx

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/goleak"

	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestModule(t *testing.T) {
	type both struct {
		fx.In
		Registerer prometheus.Registerer
		Gatherer   prometheus.Gatherer
	}
	got := fxutiltest.Component[both](t, fx.NopLogger, Module())
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "lazyscale_test_total", Help: "test"})
	require.NoError(t, got.Registerer.Register(c))
	mfs, err := got.Gatherer.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	assert.True(t, names["lazyscale_test_total"], "one registry behind both")
	assert.True(t, names["go_goroutines"], "runtime metrics")
}
