// Package fx provides the agent's Prometheus registry. Components register their metrics on
// the prometheus.Registerer; the status server serves the prometheus.Gatherer on /metrics.
// The registry is per application, never the global default, so tests can build many.
package fx

import (
	"fmt"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/lazyscale/lazyscale/comp/core/telemetry/kubemetrics"
	"github.com/lazyscale/lazyscale/comp/core/version"
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
		// The defaults, and go_gc_heap_live_bytes: the heap the last GC found live, the figure
		// a memory leak shows in (heap_alloc also counts what was allocated since).
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return out{Registerer: reg, Gatherer: reg}
}

// Metrics registers what lazyscale exports beyond its components' own metrics, on whichever
// registry the app has (lazyscale's, or a host's): lazyscale_build_info, and client-go's request
// and workqueue metrics (kubemetrics). It is part of lazyscale.Feature.
func Metrics() fx.Option {
	return fx.Module("telemetry-metrics", fx.Invoke(func(reg prometheus.Registerer) error {
		if err := reg.Register(BuildInfo()); err != nil {
			return fmt.Errorf("register lazyscale_build_info: %w", err)
		}
		if err := kubemetrics.Register(reg); err != nil {
			return fmt.Errorf("register client-go and workqueue metrics: %w", err)
		}
		return nil
	}))
}

// BuildInfo is lazyscale_build_info: always 1, with what the binary was built from as labels.
// A host with its own registry registers it there.
func BuildInfo() prometheus.Collector {
	v := version.Get()
	commit := v.Commit
	if v.Modified {
		commit += "-dirty"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "lazyscale_build_info",
		Help:        "Always 1: the version, Go version and commit of the running binary as labels.",
		ConstLabels: prometheus.Labels{"version": v.Version, "go_version": v.Go, "commit": commit, "client_go": v.ClientGo},
	})
	g.Set(1)
	return g
}
