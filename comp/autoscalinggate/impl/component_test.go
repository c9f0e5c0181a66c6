package impl

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

type staticConfig configdef.Config

func (c staticConfig) Get() configdef.Config { return configdef.Config(c) }

// With autoscaling disabled there are no watches: the component needs no clients at all, and
// start/stop are no-ops. The nil clients prove nothing is built from them.
func TestDisabledHasNoTriggerWatches(t *testing.T) {
	cfg := configdef.Defaults()
	cfg.Autoscaling.Workload.Enabled = false
	reg := prometheus.NewRegistry()
	p, err := NewComponent(Requires{Config: staticConfig(cfg), Logger: zap.NewNop(), Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))
	assert.Nil(t, p.Comp.Autoscalers())
	assert.False(t, p.Comp.Status().WorkloadAutoscaling)
	assert.NoError(t, p.Check.Ready())
	require.NoError(t, p.Stop(context.Background()))
	require.NoError(t, p.Stop(context.Background()), "stop is idempotent")
}

func TestOpeningSetsMetrics(t *testing.T) {
	cfg := configdef.Defaults()
	cfg.Autoscaling.Workload.Enabled = false
	reg := prometheus.NewRegistry()
	p, err := NewComponent(Requires{Config: staticConfig(cfg), Logger: zap.NewNop(), Registerer: reg})
	require.NoError(t, err)
	assert.Equal(t, 0.0, testutil.ToFloat64(p.Comp.(*component).openGauge))
	p.Comp.Enable(def.Trigger{Kind: "Config"})
	assert.Equal(t, 1.0, testutil.ToFloat64(p.Comp.(*component).openGauge))
	s := p.Section.Value().(def.Status)
	assert.True(t, s.Open)
}
