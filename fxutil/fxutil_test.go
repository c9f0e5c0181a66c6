package fxutil

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRoutinesStopJoins(t *testing.T) {
	var unused Routines
	require.NoError(t, unused.Stop(context.Background()), "stop before any Go")
	var r Routines
	exited := make(chan struct{}, 2)
	for range 2 {
		r.Go(func(ctx context.Context) {
			<-ctx.Done()
			exited <- struct{}{}
		})
	}
	require.NoError(t, r.Stop(context.Background()))
	assert.Len(t, exited, 2, "Stop returned only after both goroutines")
	r.Go(func(context.Context) { t.Error("Go after Stop must not run") })
	require.NoError(t, r.Stop(context.Background()), "idempotent")
}

func TestRoutinesStopBounded(t *testing.T) {
	var r Routines
	release := make(chan struct{})
	r.Go(func(context.Context) { <-release })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := r.Stop(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	close(release)
	require.NoError(t, r.Stop(context.Background()))
}

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

func TestRunReturnsConstructionErrors(t *testing.T) {
	err := Run(fx.NopLogger, fx.Provide(func() (int, error) { return 0, errors.New("bad") }), fx.Invoke(func(int) {}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad")
}

func TestTestHelper(t *testing.T) {
	got := Test[int](t, fx.NopLogger, fx.Supply(42))
	assert.Equal(t, 42, got)
}
