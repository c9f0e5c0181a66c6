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

func newTestGate(opened *atomic.Int32) *gate {
	return newGate(time.Now, func(def.Trigger, time.Time) { opened.Add(1) })
}

func TestGateOpenIsIdempotent(t *testing.T) {
	var opened atomic.Int32
	g := newTestGate(&opened)
	require.False(t, g.IsOpen())

	first := def.Trigger{Kind: "DatadogPodAutoscaler", Namespace: "a", Name: "one"}
	assert.True(t, g.Open(first))
	assert.False(t, g.Open(def.Trigger{Kind: "Namespace", Name: "other"}))
	assert.True(t, g.IsOpen())
	assert.Equal(t, int32(1), opened.Load())

	s := g.snapshot()
	require.NotNil(t, s.Trigger)
	assert.Equal(t, first, *s.Trigger, "the first trigger is kept")
	assert.False(t, s.OpenedAt.IsZero())
}

func TestGateWaitersUnblock(t *testing.T) {
	var opened atomic.Int32
	g := newTestGate(&opened)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const waiters = 16
	results := make(chan bool, waiters)
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() { results <- g.Wait(ctx) })
	}
	select {
	case <-g.Opened():
		t.Fatal("gate open before Open")
	default:
	}
	g.Open(def.Trigger{Kind: "Config"})
	wg.Wait()
	close(results)
	n := 0
	for r := range results {
		assert.True(t, r)
		n++
	}
	assert.Equal(t, waiters, n)
}

func TestGateWaitReturnsOnCancel(t *testing.T) {
	var opened atomic.Int32
	g := newTestGate(&opened)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool, 1)
	go func() { done <- g.Wait(ctx) }()
	cancel()
	for range 1 {
		select {
		case r := <-done:
			assert.False(t, r)
		case <-time.After(10 * time.Second):
			t.Fatal("waiter did not return after cancel")
		}
	}
	assert.False(t, g.IsOpen())
}

func TestGateOpenWinsOverCancelledContext(t *testing.T) {
	var opened atomic.Int32
	g := newTestGate(&opened)
	g.Open(def.Trigger{Kind: "Config"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.True(t, g.Wait(ctx), "an open gate must be reported even to a cancelled waiter")
}

func TestGateConcurrentOpen(t *testing.T) {
	var opened atomic.Int32
	g := newTestGate(&opened)
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			<-start
			if g.Open(def.Trigger{Kind: "Namespace", Name: string(rune('a' + i%26))}) {
				wins.Add(1)
			}
			_ = g.snapshot()
			_ = g.IsOpen()
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int32(1), wins.Load(), "exactly one caller opens the gate")
	assert.Equal(t, int32(1), opened.Load())
}
