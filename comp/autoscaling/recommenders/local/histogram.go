package local

import (
	"math"
	"time"
)

// decayingHistogram is the memory of one container's usage of one resource for the local
// vertical recommender: exponential buckets (each 5 % wider than the last) between min and
// max, whose samples lose half their weight every halfLife. Its size is fixed at creation
// (numBuckets float64s), whatever the number of samples: the recommender's state is bounded per
// container. It is not safe for concurrent use.
type decayingHistogram struct {
	min, ratio float64
	weights    []float64
	total      float64
	halfLife   time.Duration
	// ref is the time weights are relative to: a sample at t weighs 2^((t-ref)/halfLife).
	// Moving ref forward rescales every weight, so the numbers stay finite.
	ref time.Time
}

const histogramGrowth = 1.05

// newDecayingHistogram covers [min, max] (min > 0) with buckets growing by 5 %.
func newDecayingHistogram(min, max float64, halfLife time.Duration) *decayingHistogram {
	n := int(math.Ceil(math.Log(max/min)/math.Log(histogramGrowth))) + 1
	return &decayingHistogram{min: min, ratio: histogramGrowth, weights: make([]float64, n), halfLife: halfLife}
}

func (h *decayingHistogram) bucket(v float64) int {
	if v <= h.min {
		return 0
	}
	i := int(math.Log(v/h.min) / math.Log(h.ratio))
	return min(i, len(h.weights)-1)
}

// upper is the upper bound of bucket i: a percentile is reported as its bucket's upper
// bound, never below the samples in it.
func (h *decayingHistogram) upper(i int) float64 { return h.min * math.Pow(h.ratio, float64(i+1)) }

// add records a sample of value at t with weight w (e.g. 1 per measurement).
func (h *decayingHistogram) add(value, w float64, t time.Time) {
	if h.ref.IsZero() {
		h.ref = t
	}
	exp := t.Sub(h.ref).Seconds() / h.halfLife.Seconds()
	if exp > 50 { // 2^50: rescale before the weights overflow
		h.rescale(t)
		exp = 0
	}
	w *= math.Exp2(exp)
	h.weights[h.bucket(value)] += w
	h.total += w
}

func (h *decayingHistogram) rescale(to time.Time) {
	f := math.Exp2(-to.Sub(h.ref).Seconds() / h.halfLife.Seconds())
	h.total = 0
	for i := range h.weights {
		h.weights[i] *= f
		if h.weights[i] < 1e-300 {
			h.weights[i] = 0
		}
		h.total += h.weights[i]
	}
	h.ref = to
}

// percentile returns the smallest bucket bound under which fraction p of the (decayed)
// weight lies; 0 when empty.
func (h *decayingHistogram) percentile(p float64) float64 {
	if h.total <= 0 {
		return 0
	}
	target := p * h.total
	var sum float64
	for i, w := range h.weights {
		sum += w
		if sum >= target && w > 0 {
			return h.upper(i)
		}
	}
	return h.upper(len(h.weights) - 1)
}

// containerUsage is the local vertical recommender's state for one container.
type containerUsage struct {
	cpu, memory *decayingHistogram
	// samples counts the measurements added (a seed counts as its weight).
	samples int
	// lastOOM is the last OOM kill: for a half-life after it, memory recommendations are
	// multiplied by the DPA's bumpUpRatio.
	lastOOM time.Time
}

// The bounds and decay of the histograms: 1 millicore to 1,000 cores, 1 MiB to 1 TiB, half
// weight per day.
const usageHalfLife = 24 * time.Hour

func newContainerUsage() *containerUsage {
	return &containerUsage{
		cpu:    newDecayingHistogram(0.001, 1000, usageHalfLife),
		memory: newDecayingHistogram(1<<20, 1<<40, usageHalfLife),
	}
}

// recommendationMargin is added on top of the percentiles.
const recommendationMargin = 0.10

// recommend returns requests from the usage seen: CPU at the 90th percentile, memory at the
// 95th, each plus 10 %, memory multiplied by bumpUpRatio within a half-life of an OOM kill.
// Zero values mean "no data".
func (u *containerUsage) recommend(bumpUpRatio float64, now time.Time) (cpuCores, memoryBytes float64) {
	cpuCores = u.cpu.percentile(0.90) * (1 + recommendationMargin)
	memoryBytes = u.memory.percentile(0.95) * (1 + recommendationMargin)
	if !u.lastOOM.IsZero() && now.Sub(u.lastOOM) < usageHalfLife && bumpUpRatio > 1 {
		memoryBytes *= bumpUpRatio
	}
	return cpuCores, memoryBytes
}

// oomKilled records an OOM kill at t with the memory limit it hit: the limit goes in as a
// sample (the container needed at least that much) and the next recommendations are bumped.
func (u *containerUsage) oomKilled(limitBytes float64, t time.Time) {
	if limitBytes > 0 {
		u.memory.add(limitBytes, 1, t)
	}
	u.lastOOM = t
}
