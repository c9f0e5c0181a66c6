package impl

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/lazyscale/lazyscale/comp/core/config/def"
)

func validate(c def.Config) error {
	oneOf := func(key, value string, allowed ...string) error {
		if slices.Contains(allowed, value) {
			return nil
		}
		return &def.Error{Key: key, Err: fmt.Errorf("%q is not one of %v", value, allowed)}
	}
	if err := oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error"); err != nil {
		return err
	}
	if err := oneOf("log.format", c.Log.Format, "console", "json"); err != nil {
		return err
	}
	if err := oneOf("workloadmeta.pods.collection", c.Workloadmeta.Pods.Collection,
		def.CollectionAuto, def.CollectionEager, def.CollectionOff); err != nil {
		return err
	}
	if c.Kubernetes.QPS <= 0 {
		return &def.Error{Key: "kubernetes.qps", Err: fmt.Errorf("must be positive, got %v", c.Kubernetes.QPS)}
	}
	if c.Kubernetes.Burst < 1 {
		return &def.Error{Key: "kubernetes.burst", Err: fmt.Errorf("must be at least 1, got %d", c.Kubernetes.Burst)}
	}
	if p := c.Workloadmeta.Pods.PageSize; p < 1 || p > 10000 {
		return &def.Error{Key: "workloadmeta.pods.page_size", Err: fmt.Errorf("must be within 1..10000, got %d", p)}
	}
	if n := c.Workloadmeta.Pods.ClusterWideAbove; n < 0 || n > 10000 {
		return &def.Error{Key: "workloadmeta.pods.cluster_wide_above", Err: fmt.Errorf("must be within 0..10000 (0: always cluster-wide), got %d", n)}
	}
	w := c.Autoscaling.Workload
	if w.NumWorkers < 1 || w.NumWorkers > 64 {
		return &def.Error{Key: "autoscaling.workload.num_workers", Err: fmt.Errorf("must be within 1..64, got %d", w.NumWorkers)}
	}
	if w.Limit < 1 {
		return &def.Error{Key: "autoscaling.workload.limit", Err: fmt.Errorf("must be at least 1, got %d", w.Limit)}
	}
	if w.ResyncPeriod < time.Second {
		return &def.Error{Key: "autoscaling.workload.resync_period", Err: fmt.Errorf("must be at least 1s, got %s", w.ResyncPeriod)}
	}
	if w.MetricsMax < 0 {
		return &def.Error{Key: "autoscaling.workload.metrics_max", Err: fmt.Errorf("must not be negative (0: no per-DPA series), got %d", w.MetricsMax)}
	}
	if w.Timeline < 0 {
		return &def.Error{Key: "autoscaling.workload.timeline", Err: fmt.Errorf("must not be negative (0: no charts), got %s", w.Timeline)}
	}
	if w.IdleGrace < 0 {
		return &def.Error{Key: "autoscaling.workload.idle_grace", Err: fmt.Errorf("must not be negative (0: the gate never closes), got %s", w.IdleGrace)}
	}
	if w.RolloutInterval < 0 {
		return &def.Error{Key: "autoscaling.workload.rollout_interval", Err: fmt.Errorf("must not be negative, got %s", w.RolloutInterval)}
	}
	if w.ExternalRecommender.Timeout <= 0 {
		return &def.Error{Key: "autoscaling.workload.external_recommender.timeout", Err: fmt.Errorf("must be positive, got %s", w.ExternalRecommender.Timeout)}
	}
	if n := w.ExternalRecommender.MaxInFlight; n < 1 {
		return &def.Error{Key: "autoscaling.workload.external_recommender.max_in_flight", Err: fmt.Errorf("must be at least 1, got %d", n)}
	}
	if n := w.ExternalRecommender.MaxInFlightPerEndpoint; n < 1 {
		return &def.Error{Key: "autoscaling.workload.external_recommender.max_in_flight_per_endpoint", Err: fmt.Errorf("must be at least 1, got %d", n)}
	}
	if w.ExternalRecommender.AnswerWait < 0 || w.ExternalRecommender.AnswerWait > w.ExternalRecommender.Timeout {
		return &def.Error{Key: "autoscaling.workload.external_recommender.answer_wait", Err: fmt.Errorf("must be between 0 and the timeout (%s), got %s", w.ExternalRecommender.Timeout, w.ExternalRecommender.AnswerWait)}
	}
	if t := w.ExternalRecommender.TLS; (t.CertFile == "") != (t.KeyFile == "") {
		return &def.Error{Key: "autoscaling.workload.external_recommender.tls.cert_file", Err: fmt.Errorf("cert_file and key_file go together")}
	}
	a := c.Admission
	if err := oneOf("admission.scope", a.Scope, def.ScopeWorkloads, def.ScopeNamespaces, def.ScopeCluster); err != nil {
		return err
	}
	if a.ScopeWorkloadsMax < 0 {
		return &def.Error{Key: "admission.scope_workloads_max", Err: fmt.Errorf("must not be negative, got %d", a.ScopeWorkloadsMax)}
	}
	if err := oneOf("admission.register", a.Register, def.RegisterLazy, def.RegisterAlways, def.RegisterNever); err != nil {
		return err
	}
	if err := oneOf("admission.failure_policy", a.FailurePolicy, "Ignore", "Fail"); err != nil {
		return err
	}
	if err := oneOf("admission.certificate.mode", a.Certificate.Mode, def.CertSelfManaged, def.CertFiles); err != nil {
		return err
	}
	if a.Port < 0 || a.Port > 65535 {
		return &def.Error{Key: "admission.port", Err: fmt.Errorf("must be within 0..65535, got %d", a.Port)}
	}
	if a.ServicePort < 1 || a.ServicePort > 65535 {
		return &def.Error{Key: "admission.service_port", Err: fmt.Errorf("must be within 1..65535, got %d", a.ServicePort)}
	}
	if a.TimeoutSeconds < 1 || a.TimeoutSeconds > 30 {
		return &def.Error{Key: "admission.timeout_seconds", Err: fmt.Errorf("the apiserver accepts 1..30, got %d", a.TimeoutSeconds)}
	}
	if a.Certificate.Validity < 10*time.Second && a.Certificate.Mode == def.CertSelfManaged {
		return &def.Error{Key: "admission.certificate.validity", Err: fmt.Errorf("must be at least 10s, got %s", a.Certificate.Validity)}
	}
	if a.Certificate.Mode == def.CertFiles && a.Certificate.Dir == "" {
		return &def.Error{Key: "admission.certificate.dir", Err: fmt.Errorf("required when admission.certificate.mode is files")}
	}
	if a.URL != "" {
		u, err := url.Parse(a.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return &def.Error{Key: "admission.url", Err: fmt.Errorf("want https://host:port, got %q", a.URL)}
		}
	}
	if le := c.LeaderElection; le.Enabled {
		if le.LeaseName == "" || le.Namespace == "" {
			key := "leader_election.lease_name"
			if le.Namespace == "" {
				key = "leader_election.namespace"
			}
			return &def.Error{Key: key, Err: fmt.Errorf("required when leader_election.enabled is true")}
		}
		if le.RetryPeriod <= 0 {
			return &def.Error{Key: "leader_election.retry_period", Err: fmt.Errorf("must be positive, got %s", le.RetryPeriod)}
		}
		// client-go's own bounds: the leader must be able to retry renewing (RenewDeadline >
		// 1.2 × RetryPeriod) and give up before followers take over (LeaseDuration > RenewDeadline).
		if float64(le.RenewDeadline) <= 1.2*float64(le.RetryPeriod) {
			return &def.Error{Key: "leader_election.renew_deadline", Err: fmt.Errorf("must exceed 1.2 × retry_period (%s), got %s", le.RetryPeriod, le.RenewDeadline)}
		}
		if le.LeaseDuration <= le.RenewDeadline {
			return &def.Error{Key: "leader_election.lease_duration", Err: fmt.Errorf("must exceed renew_deadline (%s), got %s", le.RenewDeadline, le.LeaseDuration)}
		}
	}
	if a := c.Status.Auth; a != def.StatusAuthNone && a != def.StatusAuthKubernetes {
		return &def.Error{Key: "status.auth", Err: fmt.Errorf("want %q or %q, got %q", def.StatusAuthNone, def.StatusAuthKubernetes, a)}
	}
	if _, port, err := net.SplitHostPort(c.Status.Addr); err != nil {
		return &def.Error{Key: "status.addr", Err: fmt.Errorf("want host:port: %w", err)}
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return &def.Error{Key: "status.addr", Err: fmt.Errorf("invalid port %q", port)}
	}
	return nil
}
