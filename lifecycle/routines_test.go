package lifecycle

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func TestHandlersSeal(t *testing.T) {
	var h Handlers[int]
	require.NoError(t, h.Add(1))
	require.NoError(t, h.Add(2))
	assert.Equal(t, []int{1, 2}, h.Seal())
	assert.ErrorIs(t, h.Add(3), ErrSealed, "a handler added once the source runs would miss events")
}
