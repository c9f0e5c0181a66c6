// Package fx provides the agent's Prometheus registry. Components register their metrics on
// the prometheus.Registerer; the status server serves the prometheus.Gatherer on /metrics.
// The registry is per application, never the global default, so tests can build many.
package fx

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"
)

// Module provides prometheus.Registerer and prometheus.Gatherer backed by one registry that
// already holds the Go runtime and process collectors.
func Module() fx.Option {
	return fx.Module("telemetry", fx.Provide(newRegistry))
}

type out struct {
	fx.Out
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

func newRegistry() out {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return out{Registerer: reg, Gatherer: reg}
}
