// Package telemetry holds what lazyscale's metrics share: the words of the result label, and
// counters that exist at 0 before their first event, so that rate() and absent() work from the
// first scrape.
package telemetry

import "github.com/prometheus/client_golang/prometheus"

// The values of every result label.
const (
	ResultSuccess = "success"
	ResultError   = "error"
)

// Results are the values of every result label, in order.
var Results = []string{ResultSuccess, ResultError}

// Result maps an error to its result word.
func Result(err error) string {
	if err != nil {
		return ResultError
	}
	return ResultSuccess
}

// NewCounterVec is prometheus.NewCounterVec with a series at 0 for every combination of the
// known label values: known[i] lists the values of labels[i].
func NewCounterVec(opts prometheus.CounterOpts, labels []string, known ...[]string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(opts, labels)
	if len(known) != len(labels) {
		return v
	}
	var walk func(i int, values []string)
	walk = func(i int, values []string) {
		if i == len(known) {
			v.WithLabelValues(values...)
			return
		}
		for _, k := range known[i] {
			walk(i+1, append(values, k))
		}
	}
	walk(0, make([]string, 0, len(labels)))
	return v
}
