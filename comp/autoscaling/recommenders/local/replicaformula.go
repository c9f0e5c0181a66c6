package local

import "math"

// defaultTolerance is how far the usage ratio may stray from 1 before the count changes, as
// for the HPA.
const defaultTolerance = 0.1

// podSample is one pod's measurement of an objective's resource.
type podSample struct {
	Ready     bool
	HasMetric bool
	// Usage is the measured amount (cores, bytes).
	Usage float64
	// Request is the pod's (or the objective's container's) request of the resource; it is
	// what a Utilization objective divides by.
	Request float64
}

// replicasFor is the HPA formula: desired = ceil(current pods × usage / target), with the
// HPA's care for pods it cannot trust. Ready pods with a metric give the usage ratio (target
// is a utilization fraction of the requests when utilization is true, else an absolute
// amount per pod). Within tolerance nothing changes. When some pods have no metric or are not
// ready, the ratio is recomputed conservatively: on a scale-down, missing pods count as using
// exactly the target (100 % of it); on a scale-up, missing and unready pods count as using
// nothing. If that brings the ratio within tolerance or flips its direction, nothing changes,
// and the result never moves against the ratio's direction.
func replicasFor(current int32, samples []podSample, target float64, utilization bool, tolerance float64) int32 {
	if target <= 0 {
		return current
	}
	var usage, request float64
	var counted, missing, unready int
	for _, s := range samples {
		switch {
		case !s.HasMetric:
			missing++
		case !s.Ready:
			unready++
		default:
			usage += s.Usage
			request += s.Request
			counted++
		}
	}
	if counted == 0 {
		return current
	}
	ratio := func(usage, request float64, n int) float64 {
		if utilization {
			if request <= 0 {
				return 1
			}
			return (usage / request) / target
		}
		return (usage / float64(n)) / target
	}
	r := ratio(usage, request, counted)
	if missing == 0 && unready == 0 {
		if math.Abs(r-1) <= tolerance {
			return current
		}
		return ceil(r * float64(counted))
	}
	// Fill in the pods without a trustworthy metric, against the direction of the change.
	n := counted
	for _, s := range samples {
		trusted := s.HasMetric && s.Ready
		if trusted || (r < 1 && s.HasMetric) { // a scale-down ignores unready pods with a metric
			continue
		}
		n++
		req := s.Request
		request += req
		if r < 1 { // scale-down: a missing pod uses exactly the target
			if utilization {
				usage += req * target
			} else {
				usage += target
			}
		}
		// scale-up: it uses nothing
	}
	nr := ratio(usage, request, n)
	if math.Abs(nr-1) <= tolerance || (r < 1 && nr > 1) || (r > 1 && nr < 1) {
		return current
	}
	desired := ceil(nr * float64(n))
	if (nr < 1 && desired > current) || (nr > 1 && desired < current) {
		return current
	}
	return desired
}

// ceil rounds up, ignoring the last bits of floating-point noise: 1.4 / 0.7 * 3 is
// 6.000000000000001 in float64, and must give 6 pods, not 7.
func ceil(x float64) int32 { return int32(math.Ceil(x - 1e-9)) }
