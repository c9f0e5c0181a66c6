package local

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func ready(usage, request float64) podSample {
	return podSample{Ready: true, HasMetric: true, Usage: usage, Request: request}
}

func TestReplicasFor(t *testing.T) {
	tests := []struct {
		name        string
		current     int32
		samples     []podSample
		target      float64
		utilization bool
		want        int32
	}{
		{"above target scales up", 2, []podSample{ready(0.9, 1), ready(0.9, 1)}, 0.6, true, 3},
		{"within tolerance no change", 2, []podSample{ready(0.65, 1), ready(0.65, 1)}, 0.6, true, 2},
		{"below target scales down", 4, []podSample{ready(0.1, 1), ready(0.1, 1), ready(0.1, 1), ready(0.1, 1)}, 0.5, true, 1},
		{"absolute target per pod", 2, []podSample{ready(300, 0), ready(300, 0)}, 200, false, 3},
		// Trusted pods alone: ratio 0.4 → 1 pod. The missing pod counts as using the target:
		// (0.2+0.2+0.5)/3 = 0.3, ratio 0.6 → ceil(1.8) = 2: a smaller step down.
		{"scale-down: missing pods use the target", 3, []podSample{ready(0.2, 1), ready(0.2, 1), {Ready: true, Request: 1}}, 0.5, true, 2},
		{"scale-up: missing pods use nothing and can cancel it", 3, []podSample{ready(0.6, 1), {Ready: true, Request: 1}, {Ready: true, Request: 1}}, 0.5, true, 3},
		{"scale-up: unready pods use nothing", 2, []podSample{ready(1.0, 1), ready(1.0, 1), {HasMetric: true, Usage: 0.9, Request: 1}}, 0.5, true, 4},
		{"no trusted sample: no change", 3, []podSample{{Request: 1}}, 0.5, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, replicasFor(tt.current, tt.samples, tt.target, tt.utilization, defaultTolerance))
		})
	}
}

// Floating-point noise does not add a pod: 140 % against 70 % on 3 pods is 6.
func TestReplicasForExactRatio(t *testing.T) {
	samples := []podSample{{Ready: true, HasMetric: true, Usage: 0.35, Request: 0.25}, {Ready: true, HasMetric: true, Usage: 0.35, Request: 0.25}, {Ready: true, HasMetric: true, Usage: 0.35, Request: 0.25}}
	if got := replicasFor(3, samples, 0.7, true, defaultTolerance); got != 6 {
		t.Fatalf("got %d, want 6", got)
	}
}
