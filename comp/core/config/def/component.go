// Package def defines lazyscale's typed configuration: the keys, their defaults and the
// Component that hands a validated Config to the rest of the agent.
//
// A key is named by its YAML path ("autoscaling.workload.enabled"); the same key is read from
// the environment as LAZYSCALE_ + upper-snake ("LAZYSCALE_AUTOSCALING_WORKLOAD_ENABLED") and
// may be overridden by a command-line flag. Precedence, lowest first: defaults, file, env, flags.
package def

import "fmt"

// Component gives the validated configuration. It is immutable after construction and safe
// for concurrent use.
type Component interface {
	// Get returns a copy of the configuration.
	Get() Config
}

// Params tells the config component where to read from. A binary supplies it with fx.Supply.
type Params struct {
	// File is a YAML file path; empty means no file.
	File string
	// Overrides maps keys to values given on the command line; they win over everything else.
	Overrides map[string]string
	// Environ is the environment as "KEY=value" lines; nil means os.Environ().
	Environ []string
}

// Config is lazyscale's whole configuration. Field tags name the keys.
type Config struct {
	Log          LogConfig          `json:"log"`
	Status       StatusConfig       `json:"status"`
	Kubernetes   KubernetesConfig   `json:"kubernetes"`
	Autoscaling  AutoscalingConfig  `json:"autoscaling"`
	Workloadmeta WorkloadmetaConfig `json:"workloadmeta"`
}

// LogConfig configures the zap logger.
type LogConfig struct {
	// Level is one of debug, info, warn, error.
	Level string `json:"level"`
	// Format is json or console.
	Format string `json:"format"`
}

// StatusConfig configures the HTTP status server.
type StatusConfig struct {
	// Addr is host:port for /healthz, /readyz, /metrics and /status. Empty resolves to
	// ":5080" inside a cluster and "127.0.0.1:5080" outside; port 0 picks a free port.
	Addr string `json:"addr"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the same address. Off by default:
	// profiles expose internals, and the address is reachable in the pod network.
	Pprof bool `json:"pprof"`
}

// KubernetesConfig configures the API clients.
type KubernetesConfig struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster, else $KUBECONFIG.
	Kubeconfig string `json:"kubeconfig"`
	// QPS and Burst bound the client-side request rate of every client lazyscale builds.
	QPS   float64 `json:"qps"`
	Burst int     `json:"burst"`
}

// AutoscalingConfig configures workload autoscaling.
type AutoscalingConfig struct {
	Workload WorkloadAutoscalingConfig `json:"workload"`
}

// WorkloadAutoscalingConfig switches workload autoscaling. Enabled is the default because the
// stack stays dormant, and costs nothing, until the first DPA or profile label appears.
type WorkloadAutoscalingConfig struct {
	Enabled bool `json:"enabled"`
}

// WorkloadmetaConfig configures the entity store's collectors.
type WorkloadmetaConfig struct {
	Pods PodCollectionConfig `json:"pods"`
}

// Pod collection modes.
const (
	// CollectionAuto defers pod collection until the autoscaling gate opens, or turns it off
	// when autoscaling is disabled.
	CollectionAuto = "auto"
	// CollectionEager collects pods from startup.
	CollectionEager = "eager"
	// CollectionOff never lists or watches pods.
	CollectionOff = "off"
)

// PodCollectionConfig configures the pod collector.
type PodCollectionConfig struct {
	// Collection is auto, eager or off.
	Collection string `json:"collection"`
	// WatchList makes the initial sync a streaming watch (sendInitialEvents) instead of a
	// paginated LIST. On by default: one request instead of one per page, a lower peak, and
	// the apiserver serves it from its watch cache without building list responses. An
	// apiserver that refuses it gets a paginated LIST instead. See docs/benchmarks.md.
	WatchList bool `json:"watch_list"`
	// PageSize is the LIST page size when WatchList is off.
	PageSize int64 `json:"page_size"`
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Log:        LogConfig{Level: "info", Format: "console"},
		Kubernetes: KubernetesConfig{QPS: 20, Burst: 40},
		Autoscaling: AutoscalingConfig{
			Workload: WorkloadAutoscalingConfig{Enabled: true},
		},
		Workloadmeta: WorkloadmetaConfig{
			Pods: PodCollectionConfig{Collection: CollectionAuto, WatchList: true, PageSize: 500},
		},
	}
}

// Error is an invalid configuration. Key names the offending key so that an operator can find
// it in the file, the environment or the flags. Binaries exit with code 2 on it.
type Error struct {
	Key    string
	Source string // "file", "env", "flag" or "" for a validation across sources
	Err    error
}

func (e *Error) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("config key %q (from %s): %v", e.Key, e.Source, e.Err)
	}
	return fmt.Sprintf("config key %q: %v", e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
