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
	return newGate(time.Now, func(def.Trigger, time.Time, uint64) { opened.Add(1) }, func(uint64, time.Time) {})
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

// TestGateTerms: a term ends when the gate closes and its members have left; a trigger that
// comes while they leave opens the next term only then.
func TestGateTerms(t *testing.T) {
	var opened atomic.Int32
	g := newTestGate(&opened)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	assert.False(t, g.Close(), "nothing to close")

	require.True(t, g.Open(def.Trigger{Kind: "DatadogPodAutoscaler", Name: "one"}))
	termCtx, n, leave, ok := g.Join(ctx)
	require.True(t, ok)
	assert.Equal(t, uint64(1), n)

	require.True(t, g.Close())
	assert.False(t, g.IsOpen())
	select {
	case <-termCtx.Done():
	default:
		t.Fatal("the term's context lives on after Close")
	}
	assert.True(t, g.snapshot().Closing, "a member has not left yet")
	assert.False(t, g.Open(def.Trigger{Kind: "DatadogPodAutoscaler", Name: "two"}), "a closing gate does not open at once")
	assert.False(t, g.IsOpen())

	leave()
	leave() // idempotent
	require.True(t, g.IsOpen(), "the trigger that came while closing opened the next term")
	s := g.snapshot()
	assert.Equal(t, uint64(2), s.Term)
	assert.Equal(t, "two", s.Trigger.Name)
	assert.False(t, s.Closing)
	assert.Equal(t, int32(2), opened.Load())

	_, n, leave, ok = g.Join(ctx)
	require.True(t, ok)
	assert.Equal(t, uint64(2), n)
	leave()
	require.True(t, g.Close())
	assert.False(t, g.snapshot().Closing, "no member: closed at once")
	assert.False(t, g.snapshot().ClosedAt.IsZero())
}

// TestWhileOpenRunsOncePerTerm: fn runs once per term, its context ends with the term, and a
// new term runs it again; ctx's end stops it all.
func TestWhileOpenRunsOncePerTerm(t *testing.T) {
	var opened atomic.Int32
	g := newTestGate(&opened)
	ctx, cancel := context.WithCancel(context.Background())
	terms := make(chan uint64, 8)
	ended := make(chan uint64, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		def.WhileOpen(ctx, g, func(term context.Context, n uint64) {
			terms <- n
			<-term.Done()
			ended <- n
		})
	}()
	next := func(ch chan uint64) uint64 {
		select {
		case n := <-ch:
			return n
		case <-time.After(5 * time.Second):
			t.Fatal("timed out")
			return 0
		}
	}
	for want := uint64(1); want <= 3; want++ {
		g.Open(def.Trigger{Kind: "Config"})
		assert.Equal(t, want, next(terms))
		require.True(t, g.Close())
		assert.Equal(t, want, next(ended))
		require.Eventually(t, func() bool { return !g.snapshot().Closing }, 5*time.Second, time.Millisecond, "the member left")
	}
	cancel()
	<-done
}
