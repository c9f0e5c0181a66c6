// Package def defines lazyscale's typed configuration: the keys, their defaults and the
// Component that hands a validated Config to the rest of the agent.
//
// A key is named by its YAML path ("autoscaling.workload.enabled"); the same key is read from
// the environment as LAZYSCALE_ + upper-snake ("LAZYSCALE_AUTOSCALING_WORKLOAD_ENABLED") and
// may be overridden by a command-line flag. Precedence, lowest first: defaults, file, env, flags.
package def

import (
	"fmt"
	"time"
)

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
	Admission    AdmissionConfig    `json:"admission"`
	// LeaderElection decides which replica writes to the cluster.
	LeaderElection LeaderElectionConfig `json:"leader_election"`
}

// LeaderElectionConfig configures leader election on a coordination.k8s.io Lease. Every
// replica watches and serves the webhook; only the leader writes.
type LeaderElectionConfig struct {
	// Enabled is true by default: two replicas without it would both write. With it off, this
	// process writes as if it led.
	Enabled bool `json:"enabled"`
	// LeaseName and Namespace name the Lease. The namespace must exist.
	LeaseName string `json:"lease_name"`
	Namespace string `json:"namespace"`
	// Identity is this replica's name in the Lease; empty means $POD_NAME (else the host
	// name) plus a random suffix.
	Identity string `json:"identity"`
	// LeaseDuration is how long followers wait after the last renewal before taking over;
	// RenewDeadline how long the leader retries renewing before it gives up; RetryPeriod the
	// interval between attempts. client-go's usual 15s / 10s / 2s.
	LeaseDuration time.Duration `json:"lease_duration"`
	RenewDeadline time.Duration `json:"renew_deadline"`
	RetryPeriod   time.Duration `json:"retry_period"`
}

// Registration modes of the admission webhooks.
const (
	// RegisterLazy registers a webhook's entry only once the webhook asks for it (the
	// autoscaling webhook: when the gate opens). Before that the apiserver never calls lazyscale.
	RegisterLazy = "lazy"
	// RegisterAlways registers every entry at startup.
	RegisterAlways = "always"
	// RegisterNever leaves the MutatingWebhookConfiguration to someone else (e.g. a chart).
	RegisterNever = "never"
)

// Scopes of the autoscaling webhook's entry.
const (
	// ScopeWorkloads: as ScopeNamespaces, and match conditions send only the new pods of the
	// active DPAs' targets (up to admission.scope_workloads_max of them; above, whole
	// namespaces).
	ScopeWorkloads = "workloads"
	// ScopeNamespaces: the entry's namespaceSelector names the namespaces that hold an active
	// DPA, kept up to date by the leader; pods anywhere else never reach lazyscale.
	ScopeNamespaces = "namespaces"
	// ScopeCluster: every namespace but the skipped ones (kube-system, lazyscale's).
	ScopeCluster = "cluster"
)

// Certificate modes.
const (
	// CertSelfManaged generates a CA and a serving certificate, keeps them in a Secret and
	// rotates the serving certificate before it expires.
	CertSelfManaged = "self-managed"
	// CertFiles reads tls.crt and tls.key (and ca.crt for the bundle) from a directory and
	// reloads them when they change.
	CertFiles = "files"
)

// AdmissionConfig configures the HTTPS webhook server and its registration.
type AdmissionConfig struct {
	Enabled bool `json:"enabled"`
	// BindAddress is the address to listen on; empty means every interface.
	BindAddress string `json:"bind_address"`
	Port        int    `json:"port"`
	// Register is lazy, always or never.
	Register string `json:"register"`
	// Scope is workloads (the autoscaling entry covers only the pods of the active DPAs'
	// targets), namespaces (every pod of the namespaces holding an active DPA) or cluster
	// (every namespace but kube-system and lazyscale's).
	Scope string `json:"scope"`
	// ScopeWorkloadsMax bounds the workloads the workloads scope's match conditions name
	// (the entry grows by about 55 bytes each); above it the entry covers whole namespaces.
	ScopeWorkloadsMax int `json:"scope_workloads_max"`
	// FailurePolicy is Ignore or Fail. Ignore: an unreachable lazyscale never blocks a pod.
	FailurePolicy  string `json:"failure_policy"`
	TimeoutSeconds int    `json:"timeout_seconds"`
	// WebhookName is the MutatingWebhookConfiguration's name.
	WebhookName string `json:"webhook_name"`
	// WebhookOwner, when set, names the ClusterRole that owns the webhook configuration: the
	// configuration carries an owner reference to it, so deleting the install (which deletes
	// the ClusterRole) has the garbage collector delete the configuration too, and no webhook
	// is left to call an agent that is gone. The chart and deploy/ set it.
	WebhookOwner     string `json:"webhook_owner"`
	ServiceName      string `json:"service_name"`
	ServiceNamespace string `json:"service_namespace"`
	ServicePort      int    `json:"service_port"`
	// URL, when set, replaces the service reference: https://host:port (local runs, tests).
	URL         string            `json:"url"`
	Certificate CertificateConfig `json:"certificate"`
}

// CertificateConfig configures the webhook server's certificate.
type CertificateConfig struct {
	// Mode is self-managed or files.
	Mode string `json:"mode"`
	// SecretName holds the self-managed CA and certificate, in ServiceNamespace.
	SecretName string `json:"secret_name"`
	// Validity is the self-managed serving certificate's lifetime; it is renewed when a third
	// of it remains.
	Validity time.Duration `json:"validity"`
	// Dir holds tls.crt, tls.key and optionally ca.crt in files mode.
	Dir string `json:"dir"`
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
	// Pprof serves net/http/pprof under /debug/pprof/ (and the /debug/ dumps) on the same
	// address, to loopback connections only (kubectl port-forward arrives so). Off by default:
	// profiles expose internals.
	Pprof bool `json:"pprof"`
	// Auth protects /metrics and /status: StatusAuthNone (the default: anyone who reaches the
	// address) or StatusAuthKubernetes (a bearer token the apiserver authenticates, and
	// authorizes for a GET of the path). /healthz and /readyz stay open for probes.
	Auth string `json:"auth"`
}

// Status port protections.
const (
	StatusAuthNone       = "none"
	StatusAuthKubernetes = "kubernetes"
)

// KubernetesConfig configures the API clients.
type KubernetesConfig struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster, else $KUBECONFIG.
	Kubeconfig string `json:"kubeconfig"`
	// QPS and Burst bound the client-side request rate of every client lazyscale builds. The
	// default (50, burst 100) leaves room for actions next to the resyncs: each reconcile reads
	// its target, so 1,000 DPAs resynced every minute take 17 requests/s on their own, and at 20
	// a churn of 150 DPAs a minute queued reconciles for 30 s (docs/reliability.md).
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
	// NumWorkers is how many DPAs the controller reconciles at once.
	NumWorkers int `json:"num_workers"`
	// Limit is how many DPAs may be active; beyond it the newest get an Error condition.
	Limit int `json:"limit"`
	// ResyncPeriod is how often each DPA is reconciled without a change: recommendation
	// sources are asked again at this pace.
	ResyncPeriod time.Duration `json:"resync_period"`
	// RolloutInterval is the least time between two vertical rollouts of one workload, unless
	// the last one stalled (its pods still lack the recommendation after this long).
	RolloutInterval time.Duration `json:"rollout_interval"`
	// IdleGrace is how long the gate stays open once no trigger exists (no DPA, no workload or
	// namespace labelled for a profile); then the stack goes back to dormant. 0: never closes.
	IdleGrace time.Duration `json:"idle_grace"`
	// MetricsMax is how many DPAs get their own series (lazyscale_autoscaling_dpa_*), the
	// first by namespace/name; lazyscale_autoscaling_dpa_series_dropped counts the rest.
	MetricsMax int `json:"metrics_max"`
	// Timeline is how far back the status page's per-DPA charts go: the leader keeps, in
	// memory, 180 points per DPA over it. 0: none.
	Timeline time.Duration `json:"timeline"`
	// ExternalRecommender configures calls to recommenders named by the
	// autoscaling.datadoghq.com/custom-recommender annotation.
	ExternalRecommender ExternalRecommenderConfig `json:"external_recommender"`
	// LocalRecommender configures the recommender over the metrics API (metrics.k8s.io).
	LocalRecommender LocalRecommenderConfig `json:"local_recommender"`
	// Options are the defaults of the DPA options a spec does not set.
	Options WorkloadOptionsConfig `json:"options"`
}

// LocalRecommenderConfig configures the local recommender.
type LocalRecommenderConfig struct {
	// Enabled: recommend from metrics.k8s.io PodMetrics (vertical when no other source has
	// container values; horizontal as each DPA's fallback policy allows).
	Enabled bool `json:"enabled"`
}

// ExternalRecommenderConfig configures the HTTP client of external recommenders.
type ExternalRecommenderConfig struct {
	// Timeout bounds one call.
	Timeout time.Duration `json:"timeout"`
	// TLS configures https endpoints: a CA to trust instead of the system's, and a client
	// certificate for mTLS.
	TLS ExternalRecommenderTLSConfig `json:"tls"`
	// ClusterName is the cluster's name in requests of the Datadog protocol (targetRef.cluster).
	ClusterName string `json:"cluster_name"`
	// Calls run outside the reconcile workers, at most one per DPA at a time. MaxInFlight
	// bounds the calls of all DPAs together, MaxInFlightPerEndpoint those to one endpoint
	// (scheme and host): a hanging recommender holds at most that many. A call over either
	// bound waits its turn.
	MaxInFlight            int `json:"max_in_flight"`
	MaxInFlightPerEndpoint int `json:"max_in_flight_per_endpoint"`
	// AnswerWait is how long a reconcile waits for the call it started: an answer within it is
	// acted on at once; a later one queues the DPA again when it arrives, and the reconcile
	// meanwhile acts on the last answer. 0: never wait.
	AnswerWait time.Duration `json:"answer_wait"`
	// AllowedEndpoints are the recommenders a DPA may name: host names ("recommender.example.com"),
	// suffixes ("*.svc"), "*" (any name), IP addresses and CIDRs (an endpoint whose address lies
	// in one). Link-local, metadata, unspecified and multicast addresses are refused whatever
	// it says, after DNS resolution. The default admits in-cluster Services only; empty admits
	// none (external recommenders off).
	AllowedEndpoints []string `json:"allowed_endpoints"`
}

// ExternalRecommenderTLSConfig holds file paths, read at startup.
type ExternalRecommenderTLSConfig struct {
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
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
	// It applies to the cluster-wide collection only: a namespace's collection always pages,
	// because the apiserver walks its whole cache to answer a namespace's streaming list.
	WatchList bool `json:"watch_list"`
	// PageSize is the LIST page size when WatchList is off.
	PageSize int64 `json:"page_size"`
	// ClusterWideAbove is how many namespaces with a DPA the collection watches one by one;
	// above it, one cluster-wide watch replaces them, and it goes back to per-namespace
	// watches at half of it. 0 always watches the whole cluster (the behaviour before
	// scoped collection). Eager collection is always cluster-wide.
	ClusterWideAbove int `json:"cluster_wide_above"`
	// OnFollowers makes every replica collect pods while the gate is open. Off by default: a
	// follower's webhook patches from the DPA status alone, so only the leader, whose
	// controllers read pods, holds them; a new leader collects its scope before acting.
	OnFollowers bool `json:"on_followers"`
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Log:        LogConfig{Level: "info", Format: "console"},
		Status:     StatusConfig{Auth: StatusAuthNone},
		Kubernetes: KubernetesConfig{QPS: 50, Burst: 100},
		Autoscaling: AutoscalingConfig{
			Workload: WorkloadAutoscalingConfig{
				Enabled: true, NumWorkers: 2, Limit: 1000, ResyncPeriod: time.Minute, RolloutInterval: 10 * time.Minute, IdleGrace: time.Hour, MetricsMax: 1000, Timeline: 6 * time.Hour,
				ExternalRecommender: ExternalRecommenderConfig{Timeout: 10 * time.Second, MaxInFlight: 64, MaxInFlightPerEndpoint: 4, AnswerWait: 500 * time.Millisecond,
					AllowedEndpoints: []string{"*.svc", "*.svc.cluster.local"}},
				LocalRecommender: LocalRecommenderConfig{Enabled: true},
			},
		},
		Workloadmeta: WorkloadmetaConfig{
			Pods: PodCollectionConfig{Collection: CollectionAuto, WatchList: true, PageSize: 500, ClusterWideAbove: 32},
		},
		Admission: AdmissionConfig{
			Enabled:           true,
			Port:              8000,
			Register:          RegisterLazy,
			Scope:             ScopeWorkloads,
			ScopeWorkloadsMax: 1000,
			FailurePolicy:     "Ignore",
			TimeoutSeconds:    5,
			WebhookName:       "lazyscale-webhook",
			ServiceName:       "lazyscale-admission",
			ServiceNamespace:  "lazyscale",
			ServicePort:       443,
			Certificate: CertificateConfig{
				Mode:       CertSelfManaged,
				SecretName: "lazyscale-webhook-cert",
				Validity:   365 * 24 * time.Hour,
			},
		},
		LeaderElection: LeaderElectionConfig{
			Enabled:       true,
			LeaseName:     "lazyscale-leader",
			Namespace:     "lazyscale",
			LeaseDuration: 15 * time.Second,
			RenewDeadline: 10 * time.Second,
			RetryPeriod:   2 * time.Second,
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

// WorkloadOptionsConfig are the defaults of the DPA options (spec.options) a DPA does not set.
type WorkloadOptionsConfig struct {
	// Burstable removes the CPU limits of the containers lazyscale sets resources for (keeping
	// the CPU requests), as the Cluster Agent's autoscaling.workload.options.burstable.
	Burstable bool `json:"burstable"`
}
