// Package dpametrics exports one set of Prometheus series per DPA, read from the DPA view at
// scrape time. Nothing is kept between scrapes, so a DPA's series go with the DPA, and while
// the gate is closed (no view) there are none and a scrape costs nothing.
//
// Every replica that runs the stack holds the view and exports the same series (the leader
// writes the statuses they are read from): aggregate with max by (namespace, name).
package dpametrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// Source is what the collector reads: the current term's DPAs by key, nil while the stack is
// not running.
type Source interface {
	Keys() []string
	Get(key string) *v1alpha2.DatadogPodAutoscaler
}

// Collector is a prometheus.Collector of the per-DPA series.
type Collector struct {
	source func() Source
	max    int

	autoscalers, dropped                           *prometheus.Desc
	info, desired, current, recommended, condition *prometheus.Desc
	recommendedAt, lastAction                      *prometheus.Desc
}

// Series names, for the alert rules and the tests.
const (
	MetricAutoscalers         = "lazyscale_autoscaling_autoscalers"
	MetricSeriesDropped       = "lazyscale_autoscaling_dpa_series_dropped"
	MetricInfo                = "lazyscale_autoscaling_dpa_info"
	MetricDesiredReplicas     = "lazyscale_autoscaling_dpa_desired_replicas"
	MetricCurrentReplicas     = "lazyscale_autoscaling_dpa_current_replicas"
	MetricRecommendedRequests = "lazyscale_autoscaling_dpa_recommended_requests"
	MetricCondition           = "lazyscale_autoscaling_dpa_condition"
	MetricRecommendationTime  = "lazyscale_autoscaling_dpa_recommendation_timestamp_seconds"
	MetricLastActionTime      = "lazyscale_autoscaling_dpa_last_action_timestamp_seconds"
)

// New returns a collector over source's DPAs that exports at most limit of them (the first by
// namespace/name); limit <= 0 exports none.
func New(source func() Source, limit int) *Collector {
	nn := []string{"namespace", "name"}
	return &Collector{
		source: source, max: max(limit, 0),
		autoscalers: prometheus.NewDesc(MetricAutoscalers, "DPAs the running stack holds; 0 while the gate is closed.", nil, nil),
		dropped: prometheus.NewDesc(MetricSeriesDropped,
			"DPAs left out of the per-DPA series because there are more than autoscaling.workload.metrics_max.", nil, nil),
		info: prometheus.NewDesc(MetricInfo, "Always 1 per DPA: its target and mode as labels.",
			append(nn, "target_kind", "target_name", "mode"), nil),
		desired: prometheus.NewDesc(MetricDesiredReplicas, "Replicas the DPA's horizontal recommendation asks for (status.horizontal.target).",
			nn, nil),
		current: prometheus.NewDesc(MetricCurrentReplicas, "Replicas of the DPA's target (status.currentReplicas).", nn, nil),
		recommended: prometheus.NewDesc(MetricRecommendedRequests,
			"Requests the DPA's vertical recommendation sets per container: CPU in cores, memory in bytes.",
			append(nn, "container", "resource"), nil),
		condition: prometheus.NewDesc(MetricCondition, "1 while the DPA's condition is True, 0 while False or Unknown.",
			append(nn, "condition"), nil),
		recommendedAt: prometheus.NewDesc(MetricRecommendationTime,
			"When the DPA's current recommendation was generated (Unix time), by direction.", append(nn, "direction"), nil),
		lastAction: prometheus.NewDesc(MetricLastActionTime,
			"When lazyscale last acted on the DPA's target (Unix time), by direction.", append(nn, "direction"), nil),
	}
}

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.autoscalers, c.dropped, c.info, c.desired, c.current, c.recommended, c.condition, c.recommendedAt, c.lastAction} {
		ch <- d
	}
}

// Collect reads the DPAs now in the view.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var keys []string
	src := c.source()
	if src != nil {
		keys = src.Keys()
	}
	ch <- prometheus.MustNewConstMetric(c.autoscalers, prometheus.GaugeValue, float64(len(keys)))
	slices.Sort(keys)
	dropped := 0
	if len(keys) > c.max {
		dropped = len(keys) - c.max
		keys = keys[:c.max]
	}
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.GaugeValue, float64(dropped))
	for _, k := range keys {
		if dpa := src.Get(k); dpa != nil {
			c.collectOne(ch, dpa)
		}
	}
}

func (c *Collector) collectOne(ch chan<- prometheus.Metric, dpa *v1alpha2.DatadogPodAutoscaler) {
	ns, name := dpa.Namespace, dpa.Name
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{ns, name}, labels...)...)
	}
	timestamp := func(d *prometheus.Desc, t metav1.Time, labels ...string) {
		if !t.IsZero() {
			gauge(d, float64(t.UnixNano())/1e9, labels...)
		}
	}
	mode := string(v1alpha2.DatadogPodAutoscalerApplyModeApply) // the schema's default
	if dpa.Spec.ApplyPolicy != nil && dpa.Spec.ApplyPolicy.Mode != "" {
		mode = string(dpa.Spec.ApplyPolicy.Mode)
	}
	gauge(c.info, 1, dpa.Spec.TargetRef.Kind, dpa.Spec.TargetRef.Name, mode)
	st := dpa.Status
	if st.CurrentReplicas != nil {
		gauge(c.current, float64(*st.CurrentReplicas))
	}
	if h := st.Horizontal; h != nil {
		if h.Target != nil {
			gauge(c.desired, float64(h.Target.DesiredReplicas))
			timestamp(c.recommendedAt, h.Target.GeneratedAt, "horizontal")
		}
		if n := len(h.LastActions); n > 0 {
			timestamp(c.lastAction, h.LastActions[n-1].Time, "horizontal")
		}
	}
	if v := st.Vertical; v != nil {
		if v.Target != nil {
			timestamp(c.recommendedAt, v.Target.GeneratedAt, "vertical")
			for _, ctr := range v.Target.DesiredResources {
				if q, ok := ctr.Requests[corev1.ResourceCPU]; ok {
					gauge(c.recommended, float64(q.MilliValue())/1000, ctr.Name, "cpu")
				}
				if q, ok := ctr.Requests[corev1.ResourceMemory]; ok {
					gauge(c.recommended, float64(q.Value()), ctr.Name, "memory")
				}
			}
		}
		if v.LastAction != nil {
			timestamp(c.lastAction, v.LastAction.Time, "vertical")
		}
	}
	for _, cond := range st.Conditions {
		v := 0.0
		if cond.Status == metav1.ConditionTrue {
			v = 1
		}
		gauge(c.condition, v, cond.Type)
	}
}
