package local

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecayingHistogramPercentiles(t *testing.T) {
	h := newDecayingHistogram(0.001, 1000, time.Hour)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	assert.Zero(t, h.percentile(0.9), "empty")
	for i := 1; i <= 100; i++ {
		h.add(float64(i)/100, 1, t0) // 0.01 .. 1.00 cores
	}
	p90 := h.percentile(0.90)
	assert.InDelta(t, 0.90, p90, 0.90*0.06, "within one 5 %% bucket")
	assert.GreaterOrEqual(t, p90, 0.90, "a bucket's upper bound: never below the samples")
	assert.InDelta(t, 0.50, h.percentile(0.50), 0.50*0.06)
	assert.Len(t, h.weights, 285, "the size is fixed by the range, not by the samples")
}

func TestDecayingHistogramForgetsOldUsage(t *testing.T) {
	h := newDecayingHistogram(0.001, 1000, time.Hour)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for range 100 {
		h.add(2.0, 1, t0) // an old peak
	}
	for range 100 {
		h.add(0.5, 1, t0.Add(10*time.Hour)) // ten half-lives later: 1024 times the weight
	}
	assert.InDelta(t, 0.5, h.percentile(0.90), 0.5*0.06, "the old peak weighs ~0.1 %% now")
	// Far in the future the reference moves: weights stay finite and the order is kept.
	h.add(0.5, 1, t0.Add(100*time.Hour))
	require.False(t, math.IsNaN(h.total) || math.IsInf(h.total, 0), "finite")
	assert.InDelta(t, 0.5, h.percentile(0.99), 0.5*0.06)
}

func TestContainerUsageRecommendation(t *testing.T) {
	u := newContainerUsage()
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		u.cpu.add(0.2, 1, t0.Add(time.Duration(i)*time.Minute))
		u.memory.add(200<<20, 1, t0.Add(time.Duration(i)*time.Minute))
	}
	cpu, mem := u.recommend(1.2, t0.Add(2*time.Hour))
	assert.InDelta(t, 0.2*1.1, cpu, 0.2*1.1*0.06, "p90 + 10 %%")
	assert.InDelta(t, 200*1.1, mem/(1<<20), 200*1.1*0.06, "p95 + 10 %%")

	u.oomKilled(256<<20, t0.Add(3*time.Hour))
	_, bumped := u.recommend(1.2, t0.Add(4*time.Hour))
	assert.Greater(t, bumped, mem*1.2*0.99, "an OOM kill bumps memory by bumpUpRatio")
	_, later := u.recommend(1.2, t0.Add(3*time.Hour+25*time.Hour))
	assert.Less(t, later, bumped, "the bump lasts a half-life")
}
