package impl

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestGate(opened *atomic.Int32, synced *atomic.Int32) *gate {
	return newGate(time.Now,
		func(def.Trigger, time.Time) { opened.Add(1) },
		func(time.Time) { synced.Add(1) })
}

func TestGateEnableIsIdempotent(t *testing.T) {
	var opened, synced atomic.Int32
	g := newTestGate(&opened, &synced)
	require.False(t, g.IsEnabled())

	first := def.Trigger{Kind: "DatadogPodAutoscaler", Namespace: "a", Name: "one"}
	assert.True(t, g.Enable(first))
	assert.False(t, g.Enable(def.Trigger{Kind: "Namespace", Name: "other"}))
	assert.True(t, g.IsEnabled())
	assert.Equal(t, int32(1), opened.Load())

	s := g.status()
	require.NotNil(t, s.Trigger)
	assert.Equal(t, first, *s.Trigger, "the first trigger is kept")
	assert.False(t, s.OpenedAt.IsZero())
	assert.False(t, s.PodCollectionSynced)

	g.MarkPodCollectionSynced()
	g.MarkPodCollectionSynced()
	assert.Equal(t, int32(1), synced.Load())
	assert.True(t, g.status().PodCollectionSynced)
}

func TestGateWaitersUnblock(t *testing.T) {
	var opened, synced atomic.Int32
	g := newTestGate(&opened, &synced)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const waiters = 16
	results := make(chan bool, 2*waiters)
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() { results <- g.WaitForEnable(ctx) })
		wg.Go(func() { results <- g.WaitForPodCollectionSynced(ctx) })
	}
	select {
	case <-g.Enabled():
		t.Fatal("gate open before Enable")
	case <-g.PodCollectionSynced():
		t.Fatal("synced before MarkPodCollectionSynced")
	default:
	}
	g.Enable(def.Trigger{Kind: "Config"})
	g.MarkPodCollectionSynced()
	wg.Wait()
	close(results)
	n := 0
	for r := range results {
		assert.True(t, r)
		n++
	}
	assert.Equal(t, 2*waiters, n)
}

func TestGateWaitReturnsOnCancel(t *testing.T) {
	var opened, synced atomic.Int32
	g := newTestGate(&opened, &synced)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool, 2)
	go func() { done <- g.WaitForEnable(ctx) }()
	go func() { done <- g.WaitForPodCollectionSynced(ctx) }()
	cancel()
	for range 2 {
		select {
		case r := <-done:
			assert.False(t, r)
		case <-time.After(10 * time.Second):
			t.Fatal("waiter did not return after cancel")
		}
	}
	assert.False(t, g.IsEnabled())
}

func TestGateOpenWinsOverCancelledContext(t *testing.T) {
	var opened, synced atomic.Int32
	g := newTestGate(&opened, &synced)
	g.Enable(def.Trigger{Kind: "Config"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.True(t, g.WaitForEnable(ctx), "an open gate must be reported even to a cancelled waiter")
}

func TestGateConcurrentEnable(t *testing.T) {
	var opened, synced atomic.Int32
	g := newTestGate(&opened, &synced)
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			<-start
			if g.Enable(def.Trigger{Kind: "Namespace", Name: string(rune('a' + i%26))}) {
				wins.Add(1)
			}
			g.MarkPodCollectionSynced()
			_ = g.status()
			_ = g.IsEnabled()
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int32(1), wins.Load(), "exactly one caller opens the gate")
	assert.Equal(t, int32(1), opened.Load())
	assert.Equal(t, int32(1), synced.Load())
}
