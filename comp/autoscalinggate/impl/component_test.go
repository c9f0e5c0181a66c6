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
	assert.False(t, p.Comp.Status().WorkloadAutoscaling)
	assert.NoError(t, p.Ready())
	require.NoError(t, p.Stop(context.Background()))
	require.NoError(t, p.Stop(context.Background()), "stop is idempotent")
}

func TestOpeningSetsMetrics(t *testing.T) {
	cfg := configdef.Defaults()
	cfg.Autoscaling.Workload.Enabled = false
	reg := prometheus.NewRegistry()
	p, err := NewComponent(Requires{Config: staticConfig(cfg), Logger: zap.NewNop(), Registerer: reg})
	require.NoError(t, err)
	gauge := func() float64 {
		v, err := testutil.GatherAndCount(reg, "lazyscale_autoscaling_gate_open")
		require.NoError(t, err)
		require.Equal(t, 1, v)
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "lazyscale_autoscaling_gate_open" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	assert.Equal(t, 0.0, gauge())
	p.Comp.Open(def.Trigger{Kind: "Config"})
	assert.Equal(t, 1.0, gauge())
	assert.True(t, p.Status().Open)
}
