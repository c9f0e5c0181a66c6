package telemetry

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
)

func TestCountersStartAtZero(t *testing.T) {
	v := NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"webhook", "result"}, []string{"a", "b"}, Results)
	assert.Equal(t, 4, testutil.CollectAndCount(v))
	assert.Zero(t, testutil.ToFloat64(v.WithLabelValues("b", ResultError)))
	assert.Equal(t, ResultError, Result(errors.New("x")))
	assert.Equal(t, ResultSuccess, Result(nil))
}
