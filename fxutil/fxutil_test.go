package fxutil

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunAppReturnsStartErrors(t *testing.T) {
	boom := errors.New("boom")
	app := fx.New(fx.NopLogger, fx.Invoke(func(lc fx.Lifecycle) {
		lc.Append(fx.Hook{OnStart: func(context.Context) error { return boom }})
	}))
	err := RunApp(context.Background(), app)
	assert.ErrorIs(t, err, boom)
}

func TestRunAppStopsOnContext(t *testing.T) {
	stopped := false
	ctx, cancel := context.WithCancel(context.Background())
	app := fx.New(fx.NopLogger, fx.Invoke(func(lc fx.Lifecycle) {
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error { cancel(); return nil },
			OnStop:  func(context.Context) error { stopped = true; return nil },
		})
	}))
	require.NoError(t, RunApp(ctx, app))
	assert.True(t, stopped)
}

// A constructor's error deep in the graph comes back in its own words, not wrapped in every
// constructor between it and the entry point; errors.Is still finds it.
func TestRunReturnsConstructionErrors(t *testing.T) {
	bad := errors.New("kubeconfig /nowhere: no such file")
	err := Run(fx.NopLogger,
		fx.Provide(func() (int, error) { return 0, bad }),
		fx.Provide(func(n int) string { return "" }),
		fx.Provide(func(s string) float64 { return 0 }),
		fx.Invoke(func(float64) {}))
	require.Error(t, err)
	assert.Equal(t, bad.Error(), err.Error())
	assert.ErrorIs(t, err, bad)
}
